// `ponder lsp` (the real binary) driven by vscode-jsonrpc / vscode-languageserver-protocol, the
// library VS Code's language client is built on, with the capabilities VS Code sends: the exact
// JSON shapes of every answer, the progress sequence (server-created tokens, begin / report /
// end), the reasoning stream, showDocument, and cancellation (by request id, by progress token,
// by a newer request). stdout must hold only protocol frames; the exit status is checked.
//
//   PONDER_BINARY=build/ponder node --test tests/lsp/node/protocol.test.mjs
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import {
  allFrames, applyEdits, exitOf, kAnswer, kInitOptions, kNewLoop, kSum, kSummary, loadProtocol, longThinking,
  makeWorkspace, pos, range, startServer,
} from './support.mjs';

const protocol = await loadProtocol();

const {
  CancellationTokenSource, CodeActionRequest, CodeActionResolveRequest, DidChangeTextDocumentNotification,
  DidOpenTextDocumentNotification, ErrorCodes, ExecuteCommandRequest, ExitNotification, HoverRequest,
  InitializedNotification, InitializeRequest, LSPErrorCodes, RegistrationRequest, ResponseError, ShowDocumentRequest,
  ShutdownRequest, WorkDoneProgress, WorkDoneProgressCancelNotification, WorkDoneProgressCreateRequest,
  createProtocolConnection,
} = protocol;

// What VS Code (1.9x, vscode-languageclient 10) says of itself, as far as ponder reads it.
const kVsCodeCapabilities = {
  general: { positionEncodings: ['utf-16'], staleRequestSupport: { cancel: true, retryOnContentModified: [] } },
  window: { workDoneProgress: true, showDocument: { support: true }, showMessage: { messageActionItem: { additionalPropertiesSupport: true } } },
  workspace: {
    applyEdit: true,
    configuration: true,
    workspaceFolders: true,
    workspaceEdit: {
      documentChanges: true,
      resourceOperations: ['create', 'rename', 'delete'],
      failureHandling: 'textOnlyTransactional',
      normalizesLineEndings: true,
      changeAnnotationSupport: { groupsOnLabel: true },
    },
    didChangeWatchedFiles: { dynamicRegistration: true, relativePatternSupport: true },
    executeCommand: { dynamicRegistration: true },
  },
  textDocument: {
    synchronization: { dynamicRegistration: true, willSave: true, willSaveWaitUntil: true, didSave: true },
    hover: { dynamicRegistration: true, contentFormat: ['markdown', 'plaintext'] },
    codeAction: {
      dynamicRegistration: true,
      isPreferredSupport: true,
      disabledSupport: true,
      dataSupport: true,
      honorsChangeAnnotations: true,
      resolveSupport: { properties: ['edit'] },
      codeActionLiteralSupport: {
        codeActionKind: { valueSet: ['', 'quickfix', 'refactor', 'refactor.extract', 'refactor.inline', 'refactor.rewrite', 'source', 'source.organizeImports'] },
      },
    },
  },
};

// A connection to a started server that records what the server sends on its own: progress per
// token (registered when the server creates the token, as VS Code's client does), the reasoning
// stream, status, messages, server requests.
function connect(server) {
  const conn = createProtocolConnection(server.child.stdout, server.child.stdin);
  const seen = { progress: new Map(), order: [], unhandledProgress: [], reasoning: [], status: [], messages: [], logs: [], registrations: [], showDocument: [] };
  const waiters = [];
  const changed = () => { for (const w of [...waiters]) w(); };
  conn.onRequest(WorkDoneProgressCreateRequest.type, ({ token }) => {
    assert.ok(!seen.progress.has(token), `progress token ${token} created twice`);
    const events = [];
    seen.progress.set(token, events);
    seen.order.push(token);
    conn.onProgress(WorkDoneProgress.type, token, (value) => { events.push(value); changed(); });
    changed();
    return null;
  });
  conn.onUnhandledProgress((p) => seen.unhandledProgress.push(p));
  conn.onRequest(RegistrationRequest.type, (p) => { seen.registrations.push(p); return null; });
  conn.onRequest(ShowDocumentRequest.type, (p) => { seen.showDocument.push(p); changed(); return { success: true }; });
  conn.onNotification('ponder/reasoning', (p) => { seen.reasoning.push(p); changed(); });
  conn.onNotification('ponder/status', (p) => { seen.status.push(p); changed(); });
  conn.onNotification('window/showMessage', (p) => { seen.messages.push(p); changed(); });
  conn.onNotification('window/logMessage', (p) => { seen.logs.push(p); changed(); });
  conn.listen();
  // Resolves when `predicate()` holds (checked after each message), or fails after `ms`.
  const until = (predicate, what, ms = 20000) => new Promise((resolve, reject) => {
    if (predicate()) return resolve();
    const timer = setTimeout(() => { waiters.splice(waiters.indexOf(check), 1); reject(new Error(`timed out waiting for ${what}`)); }, ms);
    const check = () => {
      if (!predicate()) return;
      clearTimeout(timer);
      waiters.splice(waiters.indexOf(check), 1);
      resolve();
    };
    waiters.push(check);
  });
  return { conn, seen, until };
}

async function initialize(conn, workspace, initializationOptions = kInitOptions, capabilities = kVsCodeCapabilities) {
  const result = await conn.sendRequest(InitializeRequest.type, {
    processId: process.pid,
    clientInfo: { name: 'ponder-e2e (vscode-languageserver-protocol)', version: '1' },
    rootUri: workspace.uri(''),
    workspaceFolders: [{ uri: workspace.uri(''), name: 'ws' }],
    capabilities,
    initializationOptions,
  });
  await conn.sendNotification(InitializedNotification.type, {});
  return result;
}

// The ResponseError a promise rejects with (fails when it resolves).
async function errorOf(promise) {
  try {
    const r = await promise;
    assert.fail(`expected an error, got ${JSON.stringify(r)}`);
  } catch (e) {
    if (!(e instanceof ResponseError)) throw e;
    return e;
  }
}

const kTokenReport = /^\d+ tokens · /;

describe('ponder lsp through vscode-languageserver-protocol (VS Code capabilities)', () => {
  let workspace, server, c, uri;
  before(() => {
    workspace = makeWorkspace();
    server = startServer(workspace);
    c = connect(server);
    uri = workspace.uri('src/sum.cpp');
  });
  after(() => {
    c.conn.dispose();
    server.child.kill('SIGKILL');
    workspace.cleanup();
  });

  test('a request before initialize gets ServerNotInitialized (-32002)', async () => {
    const e = await errorOf(c.conn.sendRequest(HoverRequest.type, { textDocument: { uri }, position: pos(0, 0) }));
    assert.equal(e.code, ErrorCodes.ServerNotInitialized);
  });

  test('initialize answers exactly these capabilities', async () => {
    const r = await initialize(c.conn, workspace);
    assert.deepEqual(Object.keys(r).sort(), ['capabilities', 'serverInfo']);
    assert.deepEqual(r.capabilities, {
      positionEncoding: 'utf-16',  // VS Code offers only utf-16
      textDocumentSync: { openClose: true, change: 2, save: { includeText: false } },
      codeActionProvider: { codeActionKinds: ['quickfix', 'refactor.rewrite', 'refactor.explain'], resolveProvider: true },
      hoverProvider: true,
      executeCommandProvider: { commands: ['ponder.run', 'ponder.ask', 'ponder.showReasoning', 'ponder.cancel', 'ponder.status'] },
    });
    assert.equal(r.serverInfo.name, 'ponder');
    assert.match(r.serverInfo.version, /^\d+\.\d+/);
    // A second initialize is refused.
    const e = await errorOf(c.conn.sendRequest(InitializeRequest.type, { processId: null, rootUri: null, capabilities: {} }));
    assert.equal(e.code, ErrorCodes.InvalidRequest);
  });

  test('initialized: file watching registered dynamically; the model loads with progress', async () => {
    await c.until(() => c.seen.registrations.length > 0, 'client/registerCapability');
    assert.deepEqual(c.seen.registrations[0], {
      registrations: [{ id: 'ponder-watch', method: 'workspace/didChangeWatchedFiles', registerOptions: { watchers: [{ globPattern: '**/*' }] } }],
    });
    await c.until(() => c.seen.status.some((s) => s.state === 'idle'), 'the model to be ready');
    const load = c.seen.progress.get(c.seen.order[0]);
    await c.until(() => load.at(-1)?.kind === 'end', 'the end of the load progress');
    assert.deepEqual(load[0], { kind: 'begin', title: 'Ponder: loading the model', cancellable: true, message: load[0].message });
    for (const r of load.slice(1, -1)) {
      assert.equal(r.kind, 'report');
      assert.equal(typeof r.message, 'string');
      if ('percentage' in r) assert.ok(r.percentage >= 0 && r.percentage <= 100);
    }
    assert.match(load.at(-1).message, /^model ready: /);
    assert.deepEqual(c.seen.status.map((s) => s.state).filter((s, i, a) => a.indexOf(s) === i), ['loading', 'idle']);
  });

  let improve;
  test('codeAction lists improve, explain and fix at once, with exactly these shapes', async () => {
    await c.conn.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri, languageId: 'cpp', version: 1, text: kSum } });
    const diagnostic = { range: range(5, 4, 5, 14), message: 'out-of-bounds read', source: 'clang-tidy', severity: 2, code: 'bugprone-x' };
    const tokens = c.seen.order.length, reasoning = c.seen.reasoning.length;
    const actions = await c.conn.sendRequest(CodeActionRequest.type, {
      textDocument: { uri }, range: range(4, 10), context: { diagnostics: [diagnostic], triggerKind: 1 },
    });
    // Listing is instant, thinking is lazy: the model did not run (no progress, no reasoning).
    assert.equal(c.seen.order.length, tokens);
    assert.equal(c.seen.reasoning.length, reasoning);
    const data = (task, extra = {}) => ({ task, uri, version: 1, firstLine: 3, lastLine: 9, symbol: 'sum', diagnostic: '', instruction: '', ...extra });
    assert.deepEqual(actions, [
      { title: 'Ponder: improve `sum`', kind: 'refactor.rewrite', data: data('refactor') },
      { title: 'Ponder: explain `sum`', kind: 'refactor.explain', data: data('explain') },
      {
        title: 'Ponder: fix “out-of-bounds read”',
        kind: 'quickfix',
        diagnostics: [diagnostic],
        data: data('fix', { diagnostic: 'line 6: out-of-bounds read (clang-tidy)' }),
      },
    ]);
    improve = actions[0];
    // `only` filters by kind prefix.
    const only = await c.conn.sendRequest(CodeActionRequest.type, {
      textDocument: { uri }, range: range(4, 10), context: { diagnostics: [diagnostic], only: ['refactor'] },
    });
    assert.deepEqual(only.map((a) => a.kind), ['refactor.rewrite', 'refactor.explain']);
    // Outside any definition, without diagnostics: nothing.
    assert.deepEqual(await c.conn.sendRequest(CodeActionRequest.type, { textDocument: { uri }, range: range(1, 0), context: { diagnostics: [] } }), []);
  });

  let resolved;
  test('codeAction/resolve: a versioned, annotated edit; progress create → begin → report* → end; the reasoning stream', async () => {
    const tokensBefore = c.seen.order.length;
    const reasoningBefore = c.seen.reasoning.length;
    resolved = await c.conn.sendRequest(CodeActionResolveRequest.type, improve);
    // The action comes back with its edit and a command; the rest is as sent.
    assert.deepEqual(Object.keys(resolved).sort(), ['command', 'data', 'edit', 'kind', 'title']);
    assert.deepEqual(resolved.data, improve.data);
    const annotationId = resolved.edit.documentChanges[0].edits[0].annotationId;
    assert.match(annotationId, /^ponder-r\d+$/);
    assert.deepEqual(resolved.edit, {
      documentChanges: [{
        textDocument: { uri, version: 1 },
        edits: [{ range: range(4, 0, 6, 0), newText: kNewLoop, annotationId }],  // whole lines, only those that change
      }],
      changeAnnotations: {
        [annotationId]: { label: kSummary, needsConfirmation: true, description: 'The index loop reads v[n], one past the end when n == v.size().' },
      },
    });
    const resultId = annotationId.slice('ponder-'.length);
    assert.deepEqual(resolved.command, { title: 'Show ponder\'s reasoning', command: 'ponder.showReasoning', arguments: [resultId] });

    // One progress token, created by the server before any $/progress on it.
    assert.equal(c.seen.order.length, tokensBefore + 1);
    assert.deepEqual(c.seen.unhandledProgress, []);
    const token = c.seen.order.at(-1);
    assert.match(String(token), /^ponder\/\d+$/);
    const events = c.seen.progress.get(token);
    assert.deepEqual(events[0], { kind: 'begin', title: 'Ponder: improve `sum`', cancellable: true, message: 'waiting for the model' });
    assert.deepEqual(events.at(-1), { kind: 'end', message: kSummary });
    const reports = events.slice(1, -1);
    assert.ok(reports.length >= 1, 'at least one report');
    for (const r of reports) {
      assert.equal(r.kind, 'report');
      assert.ok(r.message === 'loading the model' || kTokenReport.test(r.message), r.message);
    }
    assert.match(reports.at(-1).message, /^\d+ tokens · The callers pass size\(\) - 1/);  // the last line of reasoning

    // The reasoning: an opening notification, the text in pieces, then done.
    const stream = c.seen.reasoning.slice(reasoningBefore);
    for (const n of stream) assert.deepEqual(Object.keys(n).sort(), ['done', 'id', 'text', 'title', 'uri']);
    assert.deepEqual(stream[0], { id: resultId, uri, title: 'improve `sum`', text: '', done: false });
    assert.equal(stream.at(-1).done, true);
    assert.ok(stream.every((n) => n.id === resultId));
    assert.equal(stream.map((n) => n.text).join(''), kAnswer.slice(0, kAnswer.indexOf('</think>')));
  });

  test('ponder.showReasoning opens a markdown document (window/showDocument) and returns it', async () => {
    const r = await c.conn.sendRequest(ExecuteCommandRequest.type, resolved.command);
    assert.deepEqual(Object.keys(r).sort(), ['markdown', 'resultId']);
    assert.equal(r.resultId, resolved.command.arguments[0]);
    assert.ok(r.markdown.startsWith(`# ${kSummary}\n\nThe index loop reads v[n]`), r.markdown);
    assert.match(r.markdown, /## Reasoning\n\nOkay, the loop runs while i <= n/);
    await c.until(() => c.seen.showDocument.length === 1, 'window/showDocument');
    const shown = c.seen.showDocument[0];
    assert.deepEqual(Object.keys(shown).sort(), ['takeFocus', 'uri']);
    assert.equal(shown.takeFocus, true);
    assert.ok(shown.uri.startsWith(workspace.uri('.tmp/ponder-reasoning/')) && shown.uri.endsWith('.md'), shown.uri);
    assert.equal(fs.readFileSync(fileURLToPath(shown.uri), 'utf8'), r.markdown);
    assert.deepEqual(c.seen.reasoning.at(-1), { id: r.resultId, title: 'improve `sum`', text: '', done: true, markdown: r.markdown });
  });

  test('the applied edit: a hover over the new code shows why; the action offered for version 1 is stale (-32801)', async () => {
    const edit = resolved.edit.documentChanges[0].edits[0];
    const text = applyEdits(kSum, [edit]);
    assert.ok(text.includes('for (int x : v) {\n    s += x;\n  }'));
    await c.conn.sendNotification(DidChangeTextDocumentNotification.type, {
      textDocument: { uri, version: 2 }, contentChanges: [{ range: edit.range, text: edit.newText }],
    });
    const hover = await c.conn.sendRequest(HoverRequest.type, { textDocument: { uri }, position: pos(5, 6) });
    assert.deepEqual(Object.keys(hover).sort(), ['contents', 'range']);
    assert.equal(hover.contents.kind, 'markdown');
    assert.ok(hover.contents.value.startsWith(`# ${kSummary}`), hover.contents.value);
    assert.deepEqual(hover.range, range(4, 0, 7, 0));  // the code the edit block put in
    const e = await errorOf(c.conn.sendRequest(CodeActionResolveRequest.type, improve));
    assert.equal(e.code, LSPErrorCodes.ContentModified);
    assert.match(e.message, /changed since the action was offered \(version 1, now 2\)/);
    // Offered again, the action names version 2.
    const again = await c.conn.sendRequest(CodeActionRequest.type, { textDocument: { uri }, range: range(4, 10), context: { diagnostics: [] } });
    assert.equal(again[0].data.version, 2);
  });

  test('hover: the signature at once, then the cached explanation', async () => {
    const params = { textDocument: { uri }, position: pos(10, 51) };  // on the call of sum
    const first = await c.conn.sendRequest(HoverRequest.type, params);
    assert.deepEqual(first.range, range(10, 50, 10, 53));
    assert.equal(first.contents.kind, 'markdown');
    assert.ok(first.contents.value.startsWith('```cpp\nint sum(const std::vector<int>& v, int n) {\n```\n*src/sum.cpp:3*'), first.contents.value);
    assert.match(first.contents.value, /writing an explanation/);
    let value = '';
    const deadline = Date.now() + 20000;
    while (!value.includes(kSummary) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      value = (await c.conn.sendRequest(HoverRequest.type, params)).contents.value;
    }
    assert.ok(value.startsWith('```cpp\nint sum(const std::vector<int>& v, int n) {\n```\n*src/sum.cpp:3*\n\n'), value);
    assert.ok(value.includes(kSummary), value);
    // Nothing under the cursor: null.
    assert.equal(await c.conn.sendRequest(HoverRequest.type, { textDocument: { uri }, position: pos(1, 0) }), null);
  });

  test('errors: unknown method (-32601), wrong params (-32602), unknown command, ponder.status', async () => {
    let e = await errorOf(c.conn.sendRequest('textDocument/definition', { textDocument: { uri }, position: pos(0, 0) }));
    assert.equal(e.code, ErrorCodes.MethodNotFound);
    e = await errorOf(c.conn.sendRequest(CodeActionRequest.type, { textDocument: 5, range: range(0, 0), context: { diagnostics: [] } }));
    assert.equal(e.code, ErrorCodes.InvalidParams);
    e = await errorOf(c.conn.sendRequest(ExecuteCommandRequest.type, { command: 'ponder.nothing', arguments: [] }));
    assert.equal(e.code, ErrorCodes.InvalidParams);
    assert.match(e.message, /unknown command: ponder.nothing/);
    const status = await c.conn.sendRequest(ExecuteCommandRequest.type, { command: 'ponder.status' });
    assert.deepEqual(Object.keys(status).sort(), ['indexReady', 'model', 'queued', 'running']);
    assert.equal(status.queued, 0);
  });

  test('shutdown, then exit: status 0; stdout held only protocol frames', async () => {
    assert.equal(await c.conn.sendRequest(ShutdownRequest.type), null);
    const e = await errorOf(c.conn.sendRequest(HoverRequest.type, { textDocument: { uri }, position: pos(0, 0) }));
    assert.equal(e.code, ErrorCodes.InvalidRequest);
    await c.conn.sendNotification(ExitNotification.type);
    assert.deepEqual(await exitOf(server), { code: 0, signal: null });
    const frames = allFrames(server);
    assert.ok(frames.length > 20);
    assert.ok(frames.every((m) => !('id' in m) || m.id !== null), 'no error without an id in a clean session');
  });
});

describe('cancellation through vscode-jsonrpc: by request id, by progress token, by a newer request', () => {
  let workspace, server, c, uri, action;
  before(async () => {
    workspace = makeWorkspace();
    // A forced reasoning of ~12K tokens: generation runs until it is stopped.
    server = startServer(workspace, { answer: longThinking() });
    c = connect(server);
    uri = workspace.uri('src/sum.cpp');
    await initialize(c.conn, workspace, { context: 16384, maxTokens: 14000, reasoningBudget: -1 });
    await c.conn.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri, languageId: 'cpp', version: 1, text: kSum } });
    const actions = await c.conn.sendRequest(CodeActionRequest.type, { textDocument: { uri }, range: range(4, 10), context: { diagnostics: [] } });
    action = actions[0];
    assert.equal(action.title, 'Ponder: improve `sum`');
  });
  after(() => {
    c.conn.dispose();
    server.child.kill('SIGKILL');
    workspace.cleanup();
  });

  // Starts a resolve and waits for its first token report; returns {promise, token}.
  async function resolving(cancel) {
    const n = c.seen.order.length;
    const promise = c.conn.sendRequest(CodeActionResolveRequest.type, action, cancel);
    promise.catch(() => {});  // inspected later
    await c.until(() => c.seen.order.length > n && c.seen.progress.get(c.seen.order.at(-1)).some((v) => v.kind === 'report' && kTokenReport.test(v.message)), 'a token report');
    return { promise, token: c.seen.order.at(-1) };
  }

  test('a CancellationToken ($/cancelRequest) stops generation: RequestCancelled (-32800), progress ends', async () => {
    const source = new CancellationTokenSource();
    const { promise, token } = await resolving(source.token);
    source.cancel();
    const e = await errorOf(promise);
    assert.equal(e.code, LSPErrorCodes.RequestCancelled);
    assert.equal(e.message, 'cancelled');
    assert.deepEqual(c.seen.progress.get(token).at(-1), { kind: 'end', message: 'cancelled' });
    assert.equal(c.seen.progress.get(token).filter((v) => v.kind === 'end').length, 1);
  });

  test('window/workDoneProgress/cancel on the token stops it the same way', async () => {
    const { promise, token } = await resolving();
    await c.conn.sendNotification(WorkDoneProgressCancelNotification.type, { token });
    const e = await errorOf(promise);
    assert.equal(e.code, LSPErrorCodes.RequestCancelled);
    assert.deepEqual(c.seen.progress.get(token).at(-1), { kind: 'end', message: 'cancelled' });
  });

  test('the same request again supersedes the running one; ponder.cancel stops the rest', async () => {
    const first = await resolving();
    const second = c.conn.sendRequest(CodeActionResolveRequest.type, action);
    second.catch(() => {});
    const e = await errorOf(first.promise);
    assert.equal(e.code, LSPErrorCodes.RequestCancelled);
    assert.equal(e.message, 'superseded by a newer request');
    await c.until(() => c.seen.order.length > 0 && c.seen.order.at(-1) !== first.token &&
      c.seen.progress.get(c.seen.order.at(-1)).some((v) => v.kind === 'report'), 'the second to run');
    assert.equal(await c.conn.sendRequest(ExecuteCommandRequest.type, { command: 'ponder.cancel' }), null);
    assert.equal((await errorOf(second)).code, LSPErrorCodes.RequestCancelled);
    // Every token began once and ended once.
    for (const token of c.seen.order) {
      const kinds = c.seen.progress.get(token).map((v) => v.kind);
      assert.equal(kinds[0], 'begin', `${token}: ${kinds}`);
      assert.equal(kinds.filter((k) => k === 'begin').length, 1);
      assert.equal(kinds.at(-1), 'end', `${token}: ${kinds}`);
      assert.equal(kinds.filter((k) => k === 'end').length, 1);
    }
    // Cancelling what is answered already, or was never asked, does nothing.
    await c.conn.sendNotification('$/cancelRequest', { id: 1 });
    await c.conn.sendNotification('$/cancelRequest', { id: 'never-asked' });
    await c.conn.sendNotification(WorkDoneProgressCancelNotification.type, { token: first.token });
    // Still serving at once.
    const status = await c.conn.sendRequest(ExecuteCommandRequest.type, { command: 'ponder.status' });
    assert.equal(status.running, false);
    assert.equal(status.queued, 0);
  });

  test('exit without shutdown: status 1', async () => {
    await c.conn.sendNotification(ExitNotification.type);
    assert.deepEqual(await exitOf(server), { code: 1, signal: null });
    allFrames(server);
  });
});

describe('a client that offers utf-8 positions gets them: columns in bytes', () => {
  let workspace, server, c;
  const text = 'int count(int n) {\n  return n;\n}\n\nint use() { /* é😀 */ return count(1); }\n';
  before(() => {
    workspace = makeWorkspace({ 'src/enc.cpp': text });
    server = startServer(workspace);
    c = connect(server);
  });
  after(() => {
    c.conn.dispose();
    server.child.kill('SIGKILL');
    workspace.cleanup();
  });

  test('positionEncoding utf-8; hovers and changes count bytes, a column inside a character backs up to its start', async () => {
    const caps = { ...kVsCodeCapabilities, general: { positionEncodings: ['utf-8', 'utf-16'] } };
    const r = await initialize(c.conn, workspace, kInitOptions, caps);
    assert.equal(r.capabilities.positionEncoding, 'utf-8');
    const uri = workspace.uri('src/enc.cpp');
    await c.conn.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri, languageId: 'cpp', version: 1, text } });
    // `count` in the call starts at byte 32 of its line (UTF-16 column 29).
    let h = await c.conn.sendRequest(HoverRequest.type, { textDocument: { uri }, position: pos(4, 33) });
    assert.deepEqual(h.range, range(4, 32, 4, 37));
    assert.ok(h.contents.value.startsWith('```cpp\nint count(int n) {\n```\n*src/enc.cpp:1*'), h.contents.value);
    // "X" at byte 17 (between é and 😀); "Y" at byte 16, inside é: before it.
    await c.conn.sendNotification(DidChangeTextDocumentNotification.type, {
      textDocument: { uri, version: 2 },
      contentChanges: [{ range: range(4, 17), text: 'X' }, { range: range(4, 16), text: 'Y' }],
    });
    h = await c.conn.sendRequest(HoverRequest.type, { textDocument: { uri }, position: pos(4, 35) });
    assert.deepEqual(h.range, range(4, 34, 4, 39));
    const actions = await c.conn.sendRequest(CodeActionRequest.type, { textDocument: { uri }, range: range(4, 2), context: { diagnostics: [] } });
    assert.deepEqual(actions.map((a) => [a.title, a.data.version, a.data.firstLine, a.data.lastLine]),
      [['Ponder: improve `use`', 2, 5, 5], ['Ponder: explain `use`', 2, 5, 5]]);
    await c.conn.sendRequest(ShutdownRequest.type);
    await c.conn.sendNotification(ExitNotification.type);
    assert.deepEqual(await exitOf(server), { code: 0, signal: null });
    allFrames(server);
  });
});
