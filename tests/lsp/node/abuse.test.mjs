// Protocol abuse against the real `ponder lsp`, with raw bytes on its stdin: bad and missing
// headers, invalid JSON and JSON that is not JSON-RPC, wrong parameter types, a message over the
// size limit, invalid UTF-8, positions past the end of a line or of the file, changes for stale
// versions, stdin closed mid-message (and while the model runs), stdout closed, the editor gone.
// The server must answer with errors or exit cleanly (exit status, no signal), write only protocol
// frames on stdout, and keep every open document's text: checked afterwards through the versions
// code actions carry, hovers over text the changes put in, and an edit resolved against the text.
//
//   PONDER_BINARY=build/ponder node --test tests/lsp/node/abuse.test.mjs
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';

import {
  allFrames, applyEdits, exitOf, framesOf, frame, kInitOptions, kNewLoop, kSum, kSummary, longThinking, makeWorkspace,
  pos, range, startServer,
} from './support.mjs';

const kParseError = -32700, kInvalidRequest = -32600, kMethodNotFound = -32601, kInvalidParams = -32602;
const kContentModified = -32801;
const kLimit = 64 * 1024 * 1024;  // lsp/framing.h: the largest body accepted

// A client speaking raw bytes: every frame the server writes is parsed strictly as it arrives
// (support.mjs framesOf: anything but a frame on stdout fails the test); the server's own
// requests are answered as an editor would.
class RawClient {
  constructor(server) {
    this.server = server;
    this.messages = [];
    this.waiters = [];
    this.nextId = 1;
    this.pending = Buffer.alloc(0);
    server.child.stdout.on('data', (chunk) => {
      const { messages, rest } = framesOf(Buffer.concat([this.pending, chunk]));
      this.pending = Buffer.from(rest);
      for (const m of messages) {
        this.messages.push(m);
        if ('method' in m && 'id' in m) this.send({ jsonrpc: '2.0', id: m.id, result: null });
      }
      for (const w of [...this.waiters]) w();
    });
  }
  write(bytes) { this.server.child.stdin.write(bytes); }
  send(message) { this.write(frame(message)); }
  notify(method, params) { this.send({ jsonrpc: '2.0', method, params }); }
  // Sends a request; resolves to its response.
  request(method, params) {
    const id = this.nextId++;
    this.send({ jsonrpc: '2.0', id, method, params });
    return this.response(id);
  }
  response(id, ms) { return this.wait((m) => m.id === id && !('method' in m), `the response to ${id}`, ms); }
  // The first message from index `from` on that matches (waiting up to `ms`).
  wait(match, what, ms = 20000, from = 0) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = this.messages.slice(from).find(match);
        if (!m) return false;
        clearTimeout(timer);
        this.waiters.splice(this.waiters.indexOf(check), 1);
        resolve(m);
        return true;
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(check), 1);
        reject(new Error(`timed out waiting for ${what}; stderr:\n${this.server.stderr.slice(-2000)}`));
      }, ms);
      this.waiters.push(check);
      check();
    });
  }
  // The next error reply without an id (what a framing or parse problem gets), after `from`.
  framingError(from, what) {
    return this.wait((m) => m.id === null && 'error' in m, what, 20000, from);
  }
  // Sends a request and checks that the server still answers at once.
  async alive() {
    const r = await this.request('workspace/executeCommand', { command: 'ponder.status' });
    assert.ok(r.result && typeof r.result.model === 'string', JSON.stringify(r));
  }
}

const kCapabilities = {
  textDocument: {
    codeAction: { codeActionLiteralSupport: { codeActionKind: { valueSet: ['quickfix', 'refactor'] } }, resolveSupport: { properties: ['edit'] } },
    hover: { contentFormat: ['markdown'] },
  },
  workspace: { workspaceEdit: { documentChanges: true } },
};

async function initialized(client, workspace, { capabilities = kCapabilities, processId = null, options = kInitOptions } = {}) {
  const r = await client.request('initialize', { processId, rootUri: workspace.uri(''), capabilities, initializationOptions: options });
  assert.ok(r.result, JSON.stringify(r));
  client.notify('initialized', {});
  return r.result;
}

// A file on disk (not open) with invalid UTF-8 in a signature (a Latin-1 "é"), and a caller.
const kLatin1 = Buffer.concat([
  Buffer.from('int count_bytes(const char* s = "caf', 'latin1'), Buffer.from([0xe9]), Buffer.from('") {\n  int n = 0;\n  while (*s++) ++n;\n  return n;\n}\n', 'latin1'),
]);

describe('abuse on a running session: the server answers with errors, goes on, and keeps the text', () => {
  let workspace, server, client, uri;
  let text = kSum, version = 1;  // what the editor holds
  const bytes = (s) => Buffer.from(s, 'latin1');
  before(async () => {
    workspace = makeWorkspace({ 'src/latin1.cpp': kLatin1 });
    server = startServer(workspace);
    client = new RawClient(server);
    uri = workspace.uri('src/sum.cpp');
    await initialized(client, workspace);
    client.notify('textDocument/didOpen', { textDocument: { uri, languageId: 'cpp', version, text } });
    await client.alive();
  });
  after(() => {
    server.child.kill('SIGKILL');
    workspace.cleanup();
  });

  test('bad Content-Length: not a number, negative, past 64 bits — an error with id null each, then on', async () => {
    for (const [value, why] of [['abc', 'invalid Content-Length: abc'], ['-5', 'invalid Content-Length: -5'],
      ['99999999999999999999999', 'invalid Content-Length: 99999999999999999999999'], ['12 34', 'invalid Content-Length: 12 34']]) {
      // With a body, and a good request right behind it: the body is dropped (not read as a
      // header block, which would glue it to the next header), the request is answered.
      const from = client.messages.length;
      const body = JSON.stringify({ jsonrpc: '2.0', id: `bad ${value}`, method: 'shutdown' });
      const id = client.nextId++;
      client.write(Buffer.concat([bytes(`Content-Length: ${value}\r\n\r\n${body}`),
        frame({ jsonrpc: '2.0', id, method: 'workspace/executeCommand', params: { command: 'ponder.status' } })]));
      const e = await client.framingError(from, value);
      assert.deepEqual(e, { jsonrpc: '2.0', id: null, error: { code: kInvalidRequest, message: `ponder: ${why}` } });
      assert.ok((await client.response(id, 5000)).result, `the request after a bad Content-Length (${value})`);
      assert.ok(!client.messages.some((m) => m.id === `bad ${value}`));
    }
    // A body that overruns its Content-Length: the first bytes are read as the message (invalid
    // JSON), the rest as a header block without Content-Length; both get an error.
    const from = client.messages.length;
    client.write(Buffer.concat([bytes('Content-Length: 10\r\n\r\n'), bytes('{"jsonrpc":"2.0","id":"short","method":"shutdown"}\r\n\r\n')]));
    assert.equal((await client.framingError(from, 'the short body')).error.code, kParseError);
    await client.wait((m) => m.id === null && /without Content-Length|malformed header/.test(m.error?.message), 'the rest', 20000, from);
    await client.alive();  // not shut down
    assert.ok(!client.messages.some((m) => m.id === 'short'));
  });

  test('missing headers: no Content-Length, a body with no header at all, stray header lines', async () => {
    let from = client.messages.length;
    client.write(bytes('Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n'));
    assert.equal((await client.framingError(from, 'no Content-Length')).error.message, 'ponder: message without Content-Length');
    await client.alive();  // (what follows a bad header block is dropped up to the next Content-Length)
    from = client.messages.length;
    client.write(bytes('{"jsonrpc":"2.0","id":"bare","method":"shutdown"}\r\n\r\n'));  // JSON without a header
    assert.equal((await client.framingError(from, 'a bare body')).error.code, kInvalidRequest);
    await client.alive();
    assert.ok(!client.messages.some((m) => m.id === 'bare'));
    // A line that is not a header beside a good Content-Length: the message is still read.
    const body = JSON.stringify({ jsonrpc: '2.0', id: 'noise', method: 'workspace/executeCommand', params: { command: 'ponder.status' } });
    client.write(bytes(`X-Noise\r\ncontent-length:${body.length}\r\n\r\n${body}`));
    assert.ok((await client.response('noise')).result);
    // A header block that never ends (64 KiB without a blank line) is dropped.
    from = client.messages.length;
    client.write(Buffer.alloc(64 * 1024 + 1, 'x'));
    assert.match((await client.framingError(from, 'the endless header')).error.message, /header block longer than 64 KiB/);
    await client.alive();
  });

  test('invalid JSON and JSON that is not JSON-RPC 2.0', async () => {
    const cases = [
      ['{not json', null, kParseError],
      ['{"jsonrpc":"2.0","id":5,"method":"textDocument/hover"', null, kParseError],  // cut short
      ['', null, kParseError],
      ['[]', null, kInvalidRequest],
      ['[{"jsonrpc":"2.0","id":6,"method":"shutdown"}]', null, kInvalidRequest],  // batches are not LSP
      ['null', null, kInvalidRequest],
      ['42', null, kInvalidRequest],
      ['{}', null, kInvalidRequest],
      ['{"jsonrpc":"1.0","id":"r7","method":"shutdown"}', 'r7', kInvalidRequest],
      ['{"id":"r8","method":"shutdown"}', 'r8', kInvalidRequest],
      ['{"jsonrpc":"2.0","id":{"a":1},"method":"shutdown"}', null, kInvalidRequest],
      ['{"jsonrpc":"2.0","id":1.5,"method":"shutdown"}', null, kInvalidRequest],
      ['{"jsonrpc":"2.0","id":"r9","method":5}', 'r9', kInvalidRequest],
      ['{"jsonrpc":"2.0","id":"ten","method":"shutdown","params":"now"}', 'ten', kInvalidRequest],
      ['{"jsonrpc":"2.0","id":"r11","method":"textDocument/nothing","params":{}}', 'r11', kMethodNotFound],
    ];
    for (const [body, id, code] of cases) {
      const from = client.messages.length;
      client.write(frame(body));
      const e = await client.wait((m) => 'error' in m && m.id === id, body, 20000, from);
      assert.equal(e.error.code, code, body);
      assert.equal(typeof e.error.message, 'string');
    }
    // A response to nothing the server asked is ignored.
    client.send({ jsonrpc: '2.0', id: 'ponder-4242', result: null });
    client.send({ jsonrpc: '2.0', id: 12345, error: { code: -1, message: 'no' } });
    await client.alive();
  });

  test('wrong parameter types: requests get -32602, notifications a logged warning', async () => {
    const requests = [
      ['textDocument/codeAction', { textDocument: 5, range: range(0, 0), context: { diagnostics: [] } }],
      ['textDocument/codeAction', { textDocument: { uri }, range: { start: pos(0, 0) }, context: { diagnostics: [] } }],
      ['textDocument/codeAction', { textDocument: { uri }, range: range(4, 0), context: { diagnostics: [{ range: range(4, 0), message: 7 }] } }],
      ['textDocument/hover', { textDocument: { uri }, position: { line: '4', character: 0 } }],
      ['textDocument/hover', { textDocument: { uri }, position: { line: -1, character: 0 } }],
      ['textDocument/hover', { textDocument: { uri }, position: { line: 1e30, character: 0 } }],
      ['textDocument/hover', [uri, 4, 10]],
      ['textDocument/hover', { textDocument: { uri: 'untitled:Untitled-1' }, position: pos(0, 0) }],
      ['codeAction/resolve', { title: 'x' }],
      ['codeAction/resolve', { title: 'x', data: { task: 7 } }],
      ['codeAction/resolve', { title: 'x', data: { task: 'refactor', uri, firstLine: 'one', lastLine: 2 } }],
      ['codeAction/resolve', { title: 'x', data: { task: 'destroy', uri } }],
      ['workspace/executeCommand', { command: 7 }],
      ['workspace/executeCommand', {}],
      ['workspace/executeCommand', { command: 'ponder.run', arguments: 'x' }],
      ['workspace/executeCommand', { command: 'ponder.ask', arguments: [{ uri, instruction: 3 }] }],
      ['workspace/executeCommand', { command: 'ponder.showReasoning', arguments: ['r999'] }],
    ];
    for (const [method, params] of requests) {
      const r = await client.request(method, params);
      assert.equal(r.error?.code, kInvalidParams, `${method} ${JSON.stringify(params)} → ${JSON.stringify(r)}`);
    }
    const notifications = [
      ['textDocument/didOpen', { textDocument: { uri: workspace.uri('src/b.cpp'), languageId: 'cpp', version: 'x', text: '' } }],
      ['textDocument/didOpen', { textDocument: { uri: 'untitled:Untitled-1', languageId: 'cpp', version: 1, text: 'int x;' } }],
      ['textDocument/didChange', { textDocument: { uri, version: version + 1 }, contentChanges: { text: 'lost' } }],
      ['textDocument/didChange', { textDocument: { uri, version: version + 1 }, contentChanges: [{ range: range(0, 0), text: 'ok' }, { text: 5 }] }],
      ['textDocument/didChange', { textDocument: { uri, version: '3' }, contentChanges: [{ text: 'lost' }] }],
      ['textDocument/didChange', { textDocument: { uri }, contentChanges: [{ text: 'lost' }] }],
      ['textDocument/didSave', { textDocument: null }],
      ['textDocument/didClose', { textDocument: { uri: 5 } }],
      ['workspace/didChangeWatchedFiles', { changes: 'all' }],
      ['workspace/didChangeConfiguration', { settings: { context: 'big' } }],
      ['$/cancelRequest', {}],
      ['window/workDoneProgress/cancel', {}],
    ];
    for (const [method, params] of notifications) {
      const from = client.messages.length;
      client.notify(method, params);
      const r = await client.wait((m) => m.method === 'window/logMessage' || m.method === 'window/showMessage' || m.id !== undefined,
        `a warning for ${method}`, 20000, from);
      assert.ok(r.method === 'window/logMessage' || r.method === 'window/showMessage', `${method}: ${JSON.stringify(r)}`);
      assert.match(r.params.message, /^ponder: /);
    }
    await client.alive();
  });

  test('a message over the size limit: a clear error, its body skipped, then on', async () => {
    const from = client.messages.length;
    const header = bytes(`Content-Length: ${kLimit + 1}\r\n\r\n`);
    // A body that would do harm if it were read: a full replacement of the document.
    const body = Buffer.alloc(kLimit + 1, ' ');
    const harmful = JSON.stringify({ jsonrpc: '2.0', method: 'textDocument/didChange', params: { textDocument: { uri, version: 1000 }, contentChanges: [{ text: 'lost' }] } });
    body.write(harmful, 0, 'latin1');
    client.write(Buffer.concat([header, body]));
    const e = await client.framingError(from, 'the size error');
    assert.deepEqual(e.error, { code: kInvalidRequest, message: `ponder: message of ${kLimit + 1} bytes exceeds the limit of ${kLimit}` });
    await client.alive();
    // Under the limit, a large document is fine (256 KiB of C++).
    let big = '';
    for (let i = 0; big.length < 256 << 10; ++i) big += `int f${i}(int x) {\n  return x + ${i};\n}\n`;
    const bigUri = workspace.uri('src/big.cpp');
    client.notify('textDocument/didOpen', { textDocument: { uri: bigUri, languageId: 'cpp', version: 1, text: big } });
    const h = await client.request('textDocument/hover', { textDocument: { uri: bigUri }, position: pos(3000, 5) });
    assert.match(h.result.contents.value, /int f1000\(int x\) \{/);
    client.notify('textDocument/didClose', { textDocument: { uri: bigUri } });
  });

  test('invalid UTF-8: bad bytes and lone surrogates become U+FFFD (the change is kept, columns hold); on disk too', async () => {
    // Each bad byte (and each lone surrogate escape) is one U+FFFD: one UTF-16 unit for one.
    for (const [raw, seen] of [[Buffer.from([0xc3, 0x28]), '\ufffd('], [Buffer.from([0xff]), '\ufffd'],
      [Buffer.from([0xed, 0xa0, 0x80]), '\ufffd\ufffd\ufffd'], [Buffer.from('\\ud800', 'latin1'), '\ufffd'],
      [Buffer.from('\\udc00x', 'latin1'), '\ufffdx']]) {
      const from = client.messages.length;
      version += 1;
      const change = Buffer.concat([
        bytes(`{"jsonrpc":"2.0","method":"textDocument/didChange","params":{"textDocument":{"uri":"${uri}","version":${version}},` +
              '"contentChanges":[{"range":{"start":{"line":0,"character":0},"end":{"line":0,"character":0}},"text":"// '),
        raw, bytes(' bad\\n"}]}}')]);
      client.write(frame(change));
      const line = `// ${seen} bad`;
      // The change landed: the line's end is where the editor's columns say.
      const r = await client.request('textDocument/codeAction', { textDocument: { uri }, range: range(0, line.length), context: { diagnostics: [] } });
      assert.ok(Array.isArray(r.result), JSON.stringify(r));
      assert.ok(!client.messages.slice(from).some((m) => m.id === null && 'error' in m), `no parse error for ${raw.toString('hex')}`);
      // Take the line out again (by its UTF-16 length): the text is what it was.
      version += 1;
      client.notify('textDocument/didChange', { textDocument: { uri, version }, contentChanges: [{ range: range(0, 0, 1, 0), text: '' }] });
    }
    const sumLine = text.slice(0, text.indexOf('int sum(')).split('\n').length - 1;  // 0-based, in the editor's text
    const actions = await client.request('textDocument/codeAction', { textDocument: { uri }, range: range(sumLine + 1, 4), context: { diagnostics: [] } });
    assert.ok(actions.result.some((a) => a.data && a.data.version === version && a.data.firstLine === sumLine + 1), JSON.stringify(actions.result));
    // A document opened with a bad byte is opened (with U+FFFD): its definitions are there.
    const other = workspace.uri('src/other.cpp');
    client.write(frame(Buffer.concat([
      bytes(`{"jsonrpc":"2.0","method":"textDocument/didOpen","params":{"textDocument":{"uri":"${other}","languageId":"cpp","version":1,"text":"int g() { return 1; } // `),
      Buffer.from([0xe9]), bytes('"}}}')])));
    const r = await client.request('textDocument/codeAction', { textDocument: { uri: other }, range: range(0, 5), context: { diagnostics: [] } });
    assert.ok(r.result.some((a) => a.title === 'Ponder: improve `g`'), JSON.stringify(r));
    // A request with a bad byte in it is read too: here a hover on a file that is not open.
    client.write(frame(Buffer.concat([bytes('{"jsonrpc":"2.0","id":"utf8","method":"textDocument/hover","params":{"textDocument":{"uri":"file:///'),
      Buffer.from([0xfe]), bytes('"},"position":{"line":0,"character":0}}}')])));
    assert.deepEqual(await client.response('utf8', 5000), { jsonrpc: '2.0', id: 'utf8', result: null });
    // The signature of a function defined in a Latin-1 file on disk: U+FFFD in valid JSON.
    version += 1;
    const call = 'int three() { return count_bytes(); }\n';
    client.notify('textDocument/didChange', { textDocument: { uri, version }, contentChanges: [{ range: range(11, 0), text: call }] });
    text = applyEdits(text, [{ range: range(11, 0), newText: call }]);
    const h = await client.request('textDocument/hover', { textDocument: { uri }, position: pos(11, 24) });
    assert.ok(h.result.contents.value.startsWith('```cpp\nint count_bytes(const char* s = "caf\ufffd") {\n```\n*src/latin1.cpp:1*'), h.result.contents.value);
  });

  test('positions past the end of a line or of the file, and inside a surrogate pair', async () => {
    // Hovers and code actions anywhere answer (null, a hover, a list), never an error.
    for (const p of [pos(0, 9999), pos(999, 0), pos(999, 999), pos(4294967295, 4294967295)]) {
      const h = await client.request('textDocument/hover', { textDocument: { uri }, position: p });
      assert.ok('result' in h, JSON.stringify(h));
      const a = await client.request('textDocument/codeAction', { textDocument: { uri }, range: { start: p, end: p }, context: { diagnostics: [{ range: { start: p, end: p }, message: 'far away' }] } });
      assert.ok(Array.isArray(a.result), JSON.stringify(a));
    }
    // A reversed selection is a selection.
    const rev = await client.request('textDocument/codeAction', { textDocument: { uri }, range: { start: pos(7, 0), end: pos(3, 0) }, context: { diagnostics: [] } });
    assert.deepEqual(rev.result.map((a) => [a.title, a.data.firstLine, a.data.lastLine]),
      [['Ponder: improve the selection', 4, 7], ['Ponder: explain the selection', 4, 7]]);
    // Changes: past the end of the file (clamped to its end), past the end of a line (to the
    // line's end), reversed (swapped), inside a surrogate pair (before the pair), several in one
    // notification (each on the text the one before made), as VS Code sends them.
    const changes = [
      [{ range: range(500, 3, 600, 0), text: '\nint tail_fn(int a) {\n  return a;\n}\n' }],
      [{ range: range(1, 50, 1, 80), text: '// line 2 ends here' }],
      [{ range: { start: pos(12, 0), end: pos(11, 37) }, text: '' }],  // reversed: the "\n" after three()
      [{ range: range(1, 0), text: '/*😀*/' }],
      [{ range: range(1, 3, 1, 3), text: 'x' }],  // between the surrogates: before the emoji
      [{ range: range(0, 0), text: '// one\n' }, { range: range(0, 0), text: '// two\n' }, { range: range(1, 3, 1, 6), text: 'ONE' }],
    ];
    const expected = [
      (t) => `${t}\nint tail_fn(int a) {\n  return a;\n}\n`,
      (t) => t.replace('\n\nint sum', '\n// line 2 ends here\nint sum'),
      (t) => t.replace('count_bytes(); }\n\n', 'count_bytes(); }\n'),
      (t) => t.replace('// line 2 ends here', '/*😀*/// line 2 ends here'),
      (t) => t.replace('/*😀*/', '/*x😀*/'),
      (t) => `// two\n// ONE\n${t}`,
    ];
    for (let i = 0; i < changes.length; ++i) {
      version += 1;
      client.notify('textDocument/didChange', { textDocument: { uri, version }, contentChanges: changes[i] });
      text = expected[i](text);
    }
    await client.alive();
    assert.ok(text.startsWith('// two\n// ONE\n#include <vector>\n/*x😀*/// line 2 ends here\nint sum(const std::vector<int>& v, int n) {\n'), text);
    assert.ok(text.endsWith('int three() { return count_bytes(); }\nint tail_fn(int a) {\n  return a;\n}\n'), text);
  });

  test('changes for stale versions are refused and logged; the text stays', async () => {
    for (const v of [version, version - 1, 0, -5]) {
      const from = client.messages.length;
      client.notify('textDocument/didChange', { textDocument: { uri, version: v }, contentChanges: [{ text: 'lost' }] });
      const w = await client.wait((m) => m.method === 'window/logMessage', `the warning for version ${v}`, 20000, from);
      assert.match(w.params.message, /is not newer than version/);
    }
    const from = client.messages.length;
    client.notify('textDocument/didOpen', { textDocument: { uri, languageId: 'cpp', version: 1, text: 'lost' } });
    assert.match((await client.wait((m) => m.method === 'window/logMessage', 'the old open', 20000, from)).params.message, /older than the open version/);
    // An action offered now, then a change: resolving the old action is refused (-32801).
    const offered = await client.request('textDocument/codeAction', { textDocument: { uri }, range: range(5, 10), context: { diagnostics: [] } });
    version += 1;
    client.notify('textDocument/didChange', { textDocument: { uri, version }, contentChanges: [{ range: range(0, 0), text: '// three\n' }] });
    text = `// three\n${text}`;
    const stale = await client.request('codeAction/resolve', offered.result[0]);
    assert.equal(stale.error?.code, kContentModified);
    const run = await client.request('workspace/executeCommand', { command: 'ponder.run', arguments: [offered.result[0].data] });
    assert.equal(run.error?.code, kContentModified);
  });

  test('afterwards every change that was valid is there and nothing else: versions, hovers, a resolved edit', async () => {
    const lines = text.split('\n');
    const sumLine = lines.findIndex((l) => l.startsWith('int sum('));
    const forLine = lines.findIndex((l) => l.includes('for (int i = 0;'));
    const actions = await client.request('textDocument/codeAction', { textDocument: { uri }, range: range(forLine, 10), context: { diagnostics: [] } });
    const improve = actions.result[0];
    assert.equal(improve.title, 'Ponder: improve `sum`');
    assert.equal(improve.data.version, version);
    assert.equal(improve.data.firstLine, sumLine + 1);
    assert.equal(improve.data.lastLine, sumLine + 7);
    // Hovers over what the changes put in, where the editor has it.
    const tail = lines.findIndex((l) => l.startsWith('int tail_fn'));
    let h = await client.request('textDocument/hover', { textDocument: { uri }, position: pos(tail, 6) });
    assert.match(h.result.contents.value, /^```cpp\nint tail_fn\(int a\) \{\n```\n\*src\/sum.cpp:(\d+)\*/);
    assert.equal(Number(/sum.cpp:(\d+)/.exec(h.result.contents.value)[1]), tail + 1);
    const three = lines.findIndex((l) => l.startsWith('int three'));
    h = await client.request('textDocument/hover', { textDocument: { uri }, position: pos(three, 5) });
    assert.equal(Number(/sum.cpp:(\d+)/.exec(h.result.contents.value)[1]), three + 1);
    // The edit, checked by the server against its text (SEARCH must match), lands where the
    // editor has the loop; applied, it gives the editor's text with the loop replaced.
    const r = await client.request('codeAction/resolve', improve);
    assert.ok(r.result, JSON.stringify(r));
    const change = r.result.edit.documentChanges[0];
    assert.deepEqual(change.textDocument, { uri, version });
    assert.deepEqual(change.edits[0].range, range(forLine, 0, forLine + 2, 0));
    assert.equal(change.edits[0].newText, kNewLoop);
    // This client offers no changeAnnotationSupport: none is sent.
    assert.ok(!('changeAnnotations' in r.result.edit) && !('annotationId' in change.edits[0]), JSON.stringify(r.result.edit));
    text = applyEdits(text, change.edits);
    assert.match(text, /for \(int x : v\) \{\n {4}s \+= x;\n {2}\}/);
  });

  test('every request was answered exactly once; shutdown and exit: status 0; stdout held only frames', async () => {
    assert.equal((await client.request('shutdown', null)).result, null);
    client.notify('exit', null);
    assert.deepEqual(await exitOf(server), { code: 0, signal: null });
    const frames = allFrames(server);
    const answered = new Map();
    for (const m of frames) if (!('method' in m) && m.id !== null) answered.set(m.id, (answered.get(m.id) ?? 0) + 1);
    for (let id = 1; id < client.nextId; ++id) assert.equal(answered.get(id), 1, `request ${id} answered ${answered.get(id) ?? 0} times`);
    // The problems were logged on stderr (stdout carries only the protocol).
    assert.match(server.stderr, /transport: invalid Content-Length: abc/);
    assert.match(server.stderr, /exceeds the limit/);
  });
});

// Waits until the workspace index is built (exit joins the thread that builds it).
async function indexed(client) {
  for (let i = 0; i < 400; ++i) {
    const r = await client.request('workspace/executeCommand', { command: 'ponder.status' });
    if (r.result.indexReady) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  assert.fail('the index was not ready within 10 s');
}

// Each test has its own server and workspace; they run at once.
describe('the end of the connection: the server exits with status 1, never by a signal', { concurrency: true }, () => {
  const workspaces = [];
  const newWorkspace = () => {
    workspaces.push(makeWorkspace());
    return workspaces.at(-1);
  };
  after(() => { for (const w of workspaces) w.cleanup(); });

  async function session() {
    const workspace = newWorkspace();
    const server = startServer(workspace);
    const client = new RawClient(server);
    await initialized(client, workspace);
    client.notify('textDocument/didOpen', { textDocument: { uri: workspace.uri('src/sum.cpp'), languageId: 'cpp', version: 1, text: kSum } });
    await indexed(client);
    return { server, client };
  }

  for (const [name, tail] of [
    ['stdin closed mid-message', 'Content-Length: 100\r\n\r\n{"jsonrpc":"2.0","id":50,"method":'],
    ['stdin closed mid-header', 'Content-Len'],
    ['stdin closed after a header naming 10 GB', `Content-Length: ${10 * 1024 ** 3}\r\n\r\n{"jsonrpc"`],
    ['stdin closed after shutdown, without exit', null],
  ]) {
    test(name, async () => {
      const { server, client } = await session();
      if (tail === null) assert.equal((await client.request('shutdown', null)).result, null);
      else client.write(Buffer.from(tail, 'latin1'));
      server.child.stdin.end();
      assert.deepEqual(await exitOf(server, 10000), { code: 1, signal: null });
      assert.match(server.stderr, /closed the connection without exit/);
      allFrames(server);
    });
  }

  test('stdin closed while the model is generating: exits at once', async () => {
    const workspace = newWorkspace();
    const server = startServer(workspace, { answer: longThinking() });
    const client = new RawClient(server);
    await initialized(client, workspace, { options: { context: 16384, maxTokens: 14000, reasoningBudget: -1 } });
    const uri = workspace.uri('src/sum.cpp');
    client.notify('textDocument/didOpen', { textDocument: { uri, languageId: 'cpp', version: 1, text: kSum } });
    await indexed(client);
    const actions = await client.request('textDocument/codeAction', { textDocument: { uri }, range: range(4, 10), context: { diagnostics: [] } });
    const id = client.nextId;
    client.send({ jsonrpc: '2.0', id: client.nextId++, method: 'codeAction/resolve', params: actions.result[0] });
    await client.wait((m) => m.method === 'ponder/reasoning' && m.params.text.length > 0, 'the reasoning to stream');
    server.child.stdin.end();  // (the forced reasoning would take far longer than 10 s to run out)
    assert.deepEqual(await exitOf(server, 10000), { code: 1, signal: null });
    // The running request was answered (cancelled) or the output simply ended: never twice.
    assert.ok(allFrames(server).filter((m) => m.id === id && !('method' in m)).length <= 1);
  });

  test('stdout closed by the editor (writes fail, no SIGPIPE death), then stdin: status 1', async () => {
    const { server, client } = await session();
    server.child.stdout.destroy();
    for (let i = 0; i < 20; ++i) client.send({ jsonrpc: '2.0', id: 1000 + i, method: 'workspace/executeCommand', params: { command: 'ponder.status' } });
    await new Promise((r) => setTimeout(r, 200));
    server.child.stdin.end();
    assert.deepEqual(await exitOf(server, 10000), { code: 1, signal: null });
  });

  test('the editor process (initialize processId) dies: the server exits by itself', async () => {
    const editor = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    await new Promise((r) => editor.on('spawn', r));
    const workspace = newWorkspace();
    const server = startServer(workspace);
    const client = new RawClient(server);
    await initialized(client, workspace, { processId: editor.pid });
    await indexed(client);
    editor.kill('SIGKILL');
    await new Promise((r) => editor.on('exit', r));  // reaped: kill(pid, 0) fails from now on
    assert.deepEqual(await exitOf(server, 10000), { code: 1, signal: null });
    assert.match(server.stderr, /is gone: exiting/);
  });
});
