// What the reasoning panel shows, as messages to its webview (media/reasoning.js draws them):
// the list of recent results, and the text of the one selected. A request that starts takes the
// panel over, so the user sees the model think; picking a result, or `ponder.showReasoning`,
// selects it.

import { displayText, type ReasoningEvent, type ReasoningStore } from './reasoning';

export interface PanelEntry {
  id: string;
  title: string;
  done: boolean;
}

export type PanelMessage =
  | { type: 'entries'; entries: PanelEntry[]; selected: string | null }
  | { type: 'show'; id: string; title: string; text: string; done: boolean }
  | { type: 'append'; id: string; text: string };

/** Messages the webview sends: a result picked in the list, or "open as a markdown document". */
export type PanelRequest = { type: 'select'; id: string } | { type: 'open'; id: string } | { type: 'ready' };

export class PanelModel {
  private selected: string | null = null;

  constructor(private readonly store: ReasoningStore) {}

  get selectedId(): string | null {
    return this.selected;
  }

  /** Everything, for a webview that was just created (or made visible again). */
  snapshot(): PanelMessage[] {
    if (this.selected !== null && !this.store.get(this.selected)) this.selected = null;
    if (this.selected === null) this.selected = this.store.list()[0]?.id ?? null;
    return [this.entries(), ...this.show()];
  }

  /** Selects a result (the user picked it, or it was asked for); unknown ids are ignored. */
  select(id: string): PanelMessage[] {
    if (!this.store.get(id)) return [];
    this.selected = id;
    return [this.entries(), ...this.show()];
  }

  /** The store changed. */
  onEvents(events: ReasoningEvent[]): PanelMessage[] {
    const out: PanelMessage[] = [];
    let listChanged = false;
    let reshow = false;
    for (const e of events) {
      switch (e.kind) {
        case 'started':
          listChanged = true;
          this.selected = e.entry.id;
          reshow = true;
          break;
        case 'appended': {
          const entry = this.store.get(e.id);
          // A result shown as markdown stays as it is; reasoning text grows in place.
          if (e.id === this.selected && !reshow && entry && !entry.markdown) out.push({ type: 'append', id: e.id, text: e.text });
          break;
        }
        case 'updated':
          listChanged = true;
          if (e.entry.id === this.selected) reshow = true;
          break;
        case 'removed':
          listChanged = true;
          if (e.id === this.selected) {
            this.selected = this.store.list()[0]?.id ?? null;
            reshow = true;
          }
          break;
      }
    }
    const head: PanelMessage[] = listChanged ? [this.entries()] : [];
    // After a re-show, the appends of this batch are already in the shown text.
    return reshow ? [...head, ...this.show()] : [...head, ...out];
  }

  private entries(): PanelMessage {
    return {
      type: 'entries',
      entries: this.store.list().map((e) => ({ id: e.id, title: e.title, done: e.done })),
      selected: this.selected,
    };
  }

  private show(): PanelMessage[] {
    const e = this.selected === null ? undefined : this.store.get(this.selected);
    if (!e) return [];
    return [{ type: 'show', id: e.id, title: e.title, text: displayText(e), done: e.done }];
  }
}
