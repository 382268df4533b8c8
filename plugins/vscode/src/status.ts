// The status-bar item: the server's and the model's state, from the client's state,
// `ponder/status` and the `ponder/reasoning` stream (a request is running from its first
// notification to its `done`, so a server that sends no "thinking" status still shows it).

import type { ReasoningParams, ServerStatus, StatusParams } from './protocol';

/** What a click on the item does. */
export type StatusAction = 'cancel' | 'openSettings' | 'restart' | 'showReasoning';

export interface StatusView {
  /** With codicons: `$(name)`. */
  text: string;
  tooltip: string;
  action: StatusAction;
  /** Drawn with the error background. */
  error: boolean;
}

export type ServerState = 'starting' | 'running' | 'stopped';

interface Thinking {
  title: string;
  tokens?: number;
  tokensPerSecond?: number;
}

export class StatusTracker {
  private server: ServerState = 'starting';
  private serverProblem = '';
  private model: StatusParams = { state: 'loading', detail: 'starting' };
  private thinking: Thinking | null = null;
  /** Requests whose reasoning is streaming: id → title. */
  private streams = new Map<string, string>();

  /** The client's state; `problem` says why it stopped (kept until it starts again). */
  onServer(state: ServerState, problem?: string): void {
    this.server = state;
    this.serverProblem = state === 'stopped' ? (problem ?? this.serverProblem) : '';
    if (state !== 'running') {
      this.thinking = null;
      this.streams.clear();
      this.model = { state: 'loading', detail: 'starting' };
    }
  }

  onStatus(p: StatusParams): void {
    if (p.state === 'thinking') {
      this.thinking = { title: p.detail ?? '' };
      if (typeof p.tokens === 'number') this.thinking.tokens = p.tokens;
      if (typeof p.tokensPerSecond === 'number') this.thinking.tokensPerSecond = p.tokensPerSecond;
      return;
    }
    this.thinking = null;
    // The end of a request ({state: "idle", detail: its title, tokens, ...}): the model is idle,
    // and still the one it was.
    if (p.state === 'idle' && typeof p.tokens === 'number') this.model = { state: 'idle', detail: this.model.detail ?? '' };
    else this.model = p;
  }

  onReasoning(p: ReasoningParams): void {
    if (p.done) this.streams.delete(p.id);
    else if (p.markdown === undefined) this.streams.set(p.id, p.title);
  }

  view(): StatusView {
    if (this.server === 'stopped') {
      return {
        text: '$(circle-slash) ponder: stopped',
        tooltip: `${this.serverProblem || 'The ponder language server is not running.'}\nClick to restart it.`,
        action: 'restart',
        error: this.serverProblem !== '',
      };
    }
    if (this.server === 'starting') {
      return { text: '$(sync~spin) ponder: starting', tooltip: 'Starting the ponder language server…', action: 'showReasoning', error: false };
    }
    const streaming = [...this.streams.values()];
    if (this.thinking || streaming.length > 0) {
      const title = this.thinking?.title || streaming[streaming.length - 1] || 'a request';
      return {
        text: `$(loading~spin) ${thinkingText(this.thinking)}`,
        tooltip: `Thinking: ${title}\nClick to cancel.`,
        action: 'cancel',
        error: false,
      };
    }
    const detail = this.model.detail ?? '';
    switch (this.model.state) {
      case 'loading':
        return { text: '$(sync~spin) ponder: loading', tooltip: `Loading the model: ${detail}`, action: 'showReasoning', error: false };
      case 'failed':
        return {
          text: '$(error) ponder: no model',
          tooltip: `${detail}\nClick to set "ponder.model".`,
          action: 'openSettings',
          error: true,
        };
      case 'unloaded':
        return {
          text: '$(debug-pause) ponder: unloaded',
          tooltip: `${detail || 'The model was unloaded.'}\nIt loads again on the next request.`,
          action: 'showReasoning',
          error: false,
        };
      default:
        return {
          text: '$(check) ponder',
          tooltip: `${detail ? `Model: ${detail}` : 'Model ready'}\nClick to show the reasoning of recent results.`,
          action: 'showReasoning',
          error: false,
        };
    }
  }
}

/** "ponder: 1,234 tokens · 41.5 tok/s", or "ponder: thinking" before the counts are known. */
export function thinkingText(t: Thinking | null): string {
  if (!t || t.tokens === undefined) return 'ponder: thinking';
  let s = `ponder: ${formatCount(t.tokens)} tokens`;
  if (t.tokensPerSecond !== undefined && Number.isFinite(t.tokensPerSecond) && t.tokensPerSecond > 0) {
    s += ` · ${t.tokensPerSecond.toFixed(1)} tok/s`;
  }
  return s;
}

export function formatCount(n: number): string {
  return Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** `ponder.status`'s answer in one line, for "Ponder: Show Server Status". */
export function formatServerStatus(s: ServerStatus): string {
  const work = s.running ? `running${s.queued > 0 ? `, ${s.queued} queued` : ''}` : s.queued > 0 ? `${s.queued} queued` : 'idle';
  return `ponder: ${s.model || 'no model'} · ${work} · index ${s.indexReady ? 'ready' : 'building'}`;
}
