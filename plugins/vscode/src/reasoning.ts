// The reasoning of recent results, assembled from the `ponder/reasoning` stream: each
// notification carries the text written since the previous one of the same id; the last has
// done = true; `ponder.showReasoning` sends the whole result as markdown.

import type { ReasoningParams } from './protocol';

export interface ReasoningEntry {
  id: string;
  title: string;
  uri?: string;
  /** The reasoning so far. */
  text: string;
  done: boolean;
  /** The result as markdown (summary, rationale, reasoning), once `ponder.showReasoning` sent it. */
  markdown?: string;
}

/** What changed, for the views that show the store. */
export type ReasoningEvent =
  | { kind: 'started'; entry: ReasoningEntry }
  | { kind: 'appended'; id: string; text: string }
  | { kind: 'updated'; entry: ReasoningEntry }
  | { kind: 'removed'; id: string };

export class ReasoningStore {
  /** Oldest first. */
  private entries: ReasoningEntry[] = [];

  /** `keep`: how many results are kept; running ones are never dropped. */
  constructor(private keep = 20) {}

  setKeep(keep: number): ReasoningEvent[] {
    this.keep = Math.max(1, Math.floor(keep));
    return this.evict();
  }

  apply(p: ReasoningParams): ReasoningEvent[] {
    if (typeof p.id !== 'string' || p.id === '') return [];
    const events: ReasoningEvent[] = [];
    let entry = this.entries.find((e) => e.id === p.id);
    if (!entry) {
      entry = { id: p.id, title: p.title, text: '', done: false };
      if (p.uri !== undefined) entry.uri = p.uri;
      this.entries.push(entry);
      events.push({ kind: 'started', entry: { ...entry } });
    }
    const text = typeof p.text === 'string' ? p.text : '';
    if (text !== '') {
      entry.text += text;
      events.push({ kind: 'appended', id: entry.id, text });
    }
    let updated = false;
    if (p.done && !entry.done) {
      entry.done = true;
      updated = true;
    }
    if (typeof p.markdown === 'string' && p.markdown !== entry.markdown) {
      entry.markdown = p.markdown;
      updated = true;
    }
    if (p.title && p.title !== entry.title) {
      entry.title = p.title;
      updated = true;
    }
    if (updated) events.push({ kind: 'updated', entry: { ...entry } });
    return events.concat(this.evict());
  }

  get(id: string): ReasoningEntry | undefined {
    return this.entries.find((e) => e.id === id);
  }

  /** Newest first. */
  list(): ReasoningEntry[] {
    return [...this.entries].reverse();
  }

  /** The newest result still being written, if any. */
  running(): ReasoningEntry | undefined {
    for (let i = this.entries.length - 1; i >= 0; --i) if (!this.entries[i].done) return this.entries[i];
    return undefined;
  }

  /** The server is gone: nothing is running any more. */
  stopAll(): ReasoningEvent[] {
    const events: ReasoningEvent[] = [];
    for (const e of this.entries) {
      if (!e.done) {
        e.done = true;
        events.push({ kind: 'updated', entry: { ...e } });
      }
    }
    return events.concat(this.evict());
  }

  private evict(): ReasoningEvent[] {
    const events: ReasoningEvent[] = [];
    while (this.entries.length > this.keep) {
      const i = this.entries.findIndex((e) => e.done);
      if (i < 0) break;
      events.push({ kind: 'removed', id: this.entries[i].id });
      this.entries.splice(i, 1);
    }
    return events;
  }
}

/**
 * True for the markdown file `ponder.showReasoning` asks the client to open (window/showDocument
 * of `<temp>/ponder-reasoning/ponder-<id>.md`): the reasoning panel shows it instead.
 */
export function isReasoningDocument(uri: string): boolean {
  return /\/ponder-reasoning\/ponder-[^/]+\.md$/.test(uri);
}

/** What the panel shows for an entry: the whole result once known, else the reasoning so far. */
export function displayText(e: ReasoningEntry): string {
  if (e.markdown !== undefined && e.markdown !== '') return e.markdown;
  return e.text;
}
