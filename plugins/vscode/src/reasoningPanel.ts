// The reasoning panel: a webview view in the bottom panel ("Ponder" tab) showing the
// `ponder/reasoning` stream live and the reasoning of recent results.
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';

import { PanelModel, type PanelMessage, type PanelRequest } from './panelModel';
import { makeNonce, panelHtml } from './panelHtml';
import type { ReasoningEvent, ReasoningStore } from './reasoning';

export class ReasoningPanel implements vscode.WebviewViewProvider {
  static readonly viewId = 'ponder.reasoning';
  private view: vscode.WebviewView | undefined;
  /** The page has loaded its script and takes messages. */
  private ready = false;
  private readonly model: PanelModel;

  constructor(
    private readonly extensionUri: vscode.Uri,
    store: ReasoningStore,
    /** "Open" pressed on a result. */
    private readonly openAsDocument: (id: string) => void,
  ) {
    this.model = new PanelModel(store);
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    this.ready = false;
    const media = vscode.Uri.joinPath(this.extensionUri, 'media');
    view.webview.options = { enableScripts: true, localResourceRoots: [media] };
    view.webview.html = panelHtml({
      cspSource: view.webview.cspSource,
      script: view.webview.asWebviewUri(vscode.Uri.joinPath(media, 'reasoning.js')).toString(),
      style: view.webview.asWebviewUri(vscode.Uri.joinPath(media, 'reasoning.css')).toString(),
      nonce: makeNonce((n) => randomBytes(n)),
    });
    view.webview.onDidReceiveMessage((m: PanelRequest) => {
      if (m.type === 'ready') {
        this.ready = true;
        this.post(this.model.snapshot());
      } else if (m.type === 'select') {
        this.post(this.model.select(m.id));
      } else {
        this.openAsDocument(m.id);
      }
    });
    view.onDidDispose(() => {
      this.view = undefined;
      this.ready = false;
    });
  }

  /** The store changed. */
  onEvents(events: ReasoningEvent[]): void {
    if (events.length > 0) this.post(this.model.onEvents(events));
  }

  /** Shows the panel, on the result `id` when given (else the selected or newest one). */
  async reveal(id?: string, preserveFocus = true): Promise<void> {
    if (id !== undefined) this.post(this.model.select(id));
    if (this.view) {
      this.view.show(preserveFocus);
    } else {
      // Creates the view; it draws the selection when its page is ready.
      await vscode.commands.executeCommand(`${ReasoningPanel.viewId}.focus`, { preserveFocus });
    }
  }

  private post(messages: PanelMessage[]): void {
    if (!this.view || !this.ready) return;
    for (const m of messages) void this.view.webview.postMessage(m);
  }
}
