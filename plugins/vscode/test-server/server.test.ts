// The extension's pieces against the real `ponder lsp` (PONDER_BINARY) with a generated model
// (PONDER_TEST_MODEL) and forced decoding: the settings it resolves and the launch it builds
// start the server; the reasoning stream it assembles, the status it shows and the panel it
// draws follow what the server really sends; "ask" comes back as an edit for the refactor
// preview. The connection is vscode-languageserver-protocol's (what vscode-languageclient is
// built on), driven from node — VS Code itself is not needed.
import * as assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';

import {
  createProtocolConnection,
  StreamMessageReader,
  StreamMessageWriter,
  type ProtocolConnection,
} from 'vscode-languageserver-protocol/node';

import { askOutcome, askParams } from '../src/ask';
import { clientOptions } from '../src/clientOptions';
import { resolveLaunch } from '../src/launch';
import { OPEN_SETTINGS, shownMessage } from '../src/messages';
import { PanelModel, type PanelMessage } from '../src/panelModel';
import type { AskResult, ReasoningParams, ShowReasoningResult, StatusParams } from '../src/protocol';
import { displayText, isReasoningDocument, ReasoningStore } from '../src/reasoning';
import { resolveSettings, serverSettings, type SettingsReader } from '../src/settings';
import { StatusTracker, type StatusView } from '../src/status';

const binary = process.env.PONDER_BINARY ?? '';
const model = process.env.PONDER_TEST_MODEL ?? '';
const skip = binary === '' || model === '' ? 'set PONDER_BINARY and PONDER_TEST_MODEL' : false;
const fixtures = path.resolve(__dirname, '..', '..', '..', '..', 'tests', 'fixtures', 'lsp');

function reader(set: Record<string, unknown>): SettingsReader {
  return (key) => (key in set ? { value: set[key], set: true } : { value: undefined, set: false });
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** What media/reasoning.js keeps of the panel's messages: the list and the shown text. */
class FakePage {
  entries: { id: string; title: string; done: boolean }[] = [];
  shown: string | null = null;
  text = '';
  apply(messages: PanelMessage[]): void {
    for (const m of messages) {
      if (m.type === 'entries') this.entries = m.entries;
      else if (m.type === 'show') {
        this.shown = m.id;
        this.text = m.text;
      } else if (m.id === this.shown) this.text += m.text;
    }
  }
}

/** One server with the extension's pieces attached to what it sends. */
class Session {
  readonly store = new ReasoningStore();
  readonly tracker = new StatusTracker();
  readonly panel = new PanelModel(this.store);
  readonly page = new FakePage();
  readonly views: StatusView[] = [];
  readonly messages: { type: number; message: string }[] = [];
  readonly applied: { label?: string; edit: Record<string, unknown> }[] = [];
  readonly shownDocuments: string[] = [];
  /** Holds the workspace, the forced answer and the tag cache; removed by stop(). */
  private readonly root = fs.mkdtempSync(path.join(os.tmpdir(), 'ponder-vscode-'));
  readonly workspace = path.join(this.root, 'w');
  private process: ChildProcess | undefined;
  private c: ProtocolConnection | undefined;

  get connection(): ProtocolConnection {
    if (!this.c) throw new Error('not started');
    return this.c;
  }

  async start(settings: Record<string, unknown>, answer: string): Promise<void> {
    fs.mkdirSync(path.join(this.workspace, 'src'), { recursive: true });
    fs.copyFileSync(path.join(fixtures, 'sum.cpp'), path.join(this.workspace, 'src', 'sum.cpp'));
    const answerFile = path.join(this.root, 'answer.txt');
    fs.writeFileSync(answerFile, answer);
    const resolved = resolveSettings(reader({ path: binary, ...settings }));
    const launch = resolveLaunch(resolved.launch, {
      pathVariable: process.env.PATH ?? '',
      home: os.homedir(),
      workspaceFolder: this.workspace,
      isExecutable,
    });
    assert.ok(launch.ok, launch.ok ? '' : launch.message);
    const cache = path.join(this.root, 'cache');
    const child = spawn(launch.command, [...launch.args, '--force-answer', answerFile, '--cache-dir', cache], {
      cwd: this.workspace,
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.process = child;
    const c = createProtocolConnection(new StreamMessageReader(child.stdout), new StreamMessageWriter(child.stdin));
    this.c = c;
    const seeStatus = () => this.views.push(this.tracker.view());
    c.onNotification('ponder/reasoning', (p: ReasoningParams) => {
      this.page.apply(this.panel.onEvents(this.store.apply(p)));
      this.tracker.onReasoning(p);
      seeStatus();
    });
    c.onNotification('ponder/status', (p: StatusParams) => {
      this.tracker.onStatus(p);
      seeStatus();
    });
    c.onNotification('window/showMessage', (p: { type: number; message: string }) => this.messages.push(p));
    c.onNotification('window/logMessage', () => undefined);
    c.onNotification('$/progress', () => undefined);
    c.onNotification('textDocument/publishDiagnostics', () => undefined);
    c.onRequest('window/workDoneProgress/create', () => null);
    c.onRequest('client/registerCapability', () => null);
    c.onRequest('workspace/applyEdit', (p: { label?: string; edit: Record<string, unknown> }) => {
      this.applied.push(p);
      return { applied: true };
    });
    c.onRequest('window/showDocument', (p: { uri: string }) => {
      this.shownDocuments.push(p.uri);
      return { success: true };
    });
    c.listen();
    this.tracker.onServer('starting');
    const options = clientOptions(() => serverSettings(reader(settings)));
    await c.sendRequest('initialize', {
      processId: process.pid,
      rootUri: pathToFileURL(this.workspace).href,
      workspaceFolders: [{ uri: pathToFileURL(this.workspace).href, name: 'w' }],
      initializationOptions: (options.initializationOptions as () => unknown)(),
      // What VS Code's client declares for the features ponder uses.
      capabilities: {
        window: { workDoneProgress: true, showDocument: { support: true } },
        workspace: {
          applyEdit: true,
          workspaceEdit: { documentChanges: true, changeAnnotationSupport: { groupsOnLabel: true } },
        },
        textDocument: {
          codeAction: {
            codeActionLiteralSupport: { codeActionKind: { valueSet: ['quickfix', 'refactor'] } },
            resolveSupport: { properties: ['edit'] },
          },
          hover: { contentFormat: ['markdown', 'plaintext'] },
        },
      },
    });
    this.tracker.onServer('running');
    await c.sendNotification('initialized', {});
  }

  get uri(): string {
    return pathToFileURL(path.join(this.workspace, 'src', 'sum.cpp')).href;
  }

  async open(): Promise<void> {
    const text = fs.readFileSync(path.join(this.workspace, 'src', 'sum.cpp'), 'utf8');
    await this.connection.sendNotification('textDocument/didOpen', {
      textDocument: { uri: this.uri, languageId: 'cpp', version: 1, text },
    });
  }

  async until(what: string, cond: () => boolean, ms = 60000): Promise<void> {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async stop(): Promise<void> {
    const child = this.process;
    const exited = new Promise<void>((resolve) => {
      if (!child || child.exitCode !== null) {
        resolve();
        return;
      }
      child.once('exit', () => {
        resolve();
      });
    });
    try {
      await this.c?.sendRequest('shutdown');
      await this.c?.sendNotification('exit');
    } catch {
      child?.kill();
    }
    // The server may still be writing its tag cache: wait for it before removing the folder.
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    this.c?.dispose();
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

describe('the extension against ponder lsp', { skip }, () => {
  const s = new Session();
  const answer = fs.readFileSync(path.join(fixtures, 'r1_answer.txt'), 'utf8');

  before(async () => {
    await s.start({ model, reasoningBudget: 512, 'suggestions.onSave': false, logLevel: 'warn' }, answer);
    await s.until('the model to load', () => s.tracker.view().text === '$(check) ponder');
    await s.open();
  });
  after(() => s.stop());

  it('the settings it sends are accepted: no complaint from the server', () => {
    assert.deepEqual(s.messages, []);
    assert.equal(s.views[0].text, '$(sync~spin) ponder: loading');
  });

  it('ask: the edit comes for the refactor preview, the reasoning streams, the status shows thinking', async () => {
    const range = { start: { line: 4, character: 0 }, end: { line: 7, character: 0 } };
    const params = askParams(s.uri, range, ' use a range-for loop ');
    assert.ok(params);
    const result: AskResult = await s.connection.sendRequest('workspace/executeCommand', { command: 'ponder.ask', arguments: [params] });
    const outcome = askOutcome(result);
    assert.deepEqual(outcome, {
      kind: 'applied',
      resultId: outcome.resultId,
      message: "ponder: Iterate over the vector's elements instead of an index bound by n.",
    });
    // The edit: for the version it was computed on, annotated so that VS Code previews it.
    assert.equal(s.applied.length, 1);
    const edit = s.applied[0].edit as {
      documentChanges: { textDocument: { uri: string; version: number }; edits: { newText: string; annotationId?: string }[] }[];
      changeAnnotations: Record<string, { label: string; needsConfirmation: boolean }>;
    };
    assert.equal(edit.documentChanges[0].textDocument.uri, s.uri);
    assert.equal(edit.documentChanges[0].textDocument.version, 1);
    assert.equal(edit.documentChanges[0].edits[0].newText, '  for (int x : v) {\n    s += x;\n');
    const annotation = edit.changeAnnotations[edit.documentChanges[0].edits[0].annotationId ?? ''];
    assert.equal(annotation.needsConfirmation, true);
    assert.equal(annotation.label, "Iterate over the vector's elements instead of an index bound by n.");
    // The stream, assembled: exactly the reasoning the model wrote (before </think>).
    const entry = s.store.get(outcome.resultId);
    assert.ok(entry);
    assert.equal(entry.done, true);
    assert.equal(entry.text.trim(), answer.slice(0, answer.indexOf('</think>')).trim());
    assert.equal(entry.title, 'use a range-for loop');
    // The panel drew it: a request that starts takes it over.
    assert.equal(s.page.shown, outcome.resultId);
    assert.equal(s.page.text, displayText(entry));
    assert.deepEqual(s.page.entries, [{ id: outcome.resultId, title: entry.title, done: true }]);
    // The status bar went through "thinking" (click: cancel) and back.
    assert.ok(s.views.some((v) => v.action === 'cancel' && v.text.startsWith('$(loading~spin) ponder: ')));
    await s.until('the status to settle', () => s.tracker.view().text === '$(check) ponder', 5000);
  });

  it('showReasoning: the markdown reaches the panel; its document is the panel’s to show', async () => {
    const result: ShowReasoningResult = await s.connection.sendRequest('workspace/executeCommand', {
      command: 'ponder.showReasoning',
      arguments: [],
    });
    assert.match(result.markdown, /Iterate over the vector's elements/);
    const entry = s.store.get(result.resultId);
    assert.equal(entry?.markdown, result.markdown);
    assert.equal(s.page.text, result.markdown);
    await s.until('window/showDocument', () => s.shownDocuments.length > 0, 5000);
    assert.ok(isReasoningDocument(s.shownDocuments[0]), s.shownDocuments[0]);
  });
});

describe('the extension against ponder lsp without a model', { skip }, () => {
  const s = new Session();
  after(() => s.stop());

  it('says so, with a link to the model setting, and the status bar leads there', async () => {
    await s.start({ model: path.join(os.tmpdir(), 'no-such-model.gguf') }, 'x');
    await s.until('the failure', () => s.tracker.view().action === 'openSettings');
    assert.equal(s.tracker.view().text, '$(error) ponder: no model');
    await s.until('the message', () => s.messages.length > 0, 5000);
    const m = shownMessage(s.messages[0].type, s.messages[0].message);
    assert.equal(m.level, 'error');
    assert.deepEqual(m.actions, [OPEN_SETTINGS]);
    assert.equal(m.settingsQuery, 'ponder.model');
  });
});
