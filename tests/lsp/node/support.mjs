// What the end-to-end tests of `ponder lsp` share: where the binary and the test model are, the
// fixture workspace (the C++ file and the forced R1 answer of tests/lsp/test_server.cpp), the
// server as a child process (its stdout recorded byte for byte, its stderr, its exit), and a
// strict reader of LSP frames.
//
// Inputs (ctest passes them; by hand, set them):
//   PONDER_BINARY      the built `ponder`
//   PONDER_TEST_MODEL  a generated test model (a GGUF file); when unset it is written once into
//                      a temporary folder by the make_test_model found beside PONDER_BINARY.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

// The fixture of tests/lsp/test_server.cpp: `sum` reads one past the end.
export const kSum =
  '#include <vector>\n' +
  '\n' +
  'int sum(const std::vector<int>& v, int n) {\n' +
  '  int s = 0;\n' +
  '  for (int i = 0; i <= n; ++i) {\n' +
  '    s += v[i];\n' +
  '  }\n' +
  '  return s;\n' +
  '}\n' +
  '\n' +
  'int twice(const std::vector<int>& v) { return 2 * sum(v, static_cast<int>(v.size()) - 1); }\n';

// An answer as R1 distills write it: reasoning, </think>, summary, rationale, an edit block.
export const kAnswer =
  'Okay, the loop runs while i <= n, so with n == v.size() it reads one past the end.\n' +
  'The callers pass size() - 1, which is easy to get wrong. Use the vector\'s size.\n' +
  '</think>\n\n' +
  'Iterate over the vector\'s elements instead of an index bound by n.\n\n' +
  'The index loop reads v[n], one past the end when n == v.size().\n\n' +
  'src/sum.cpp\n' +
  '```cpp\n' +
  '<<<<<<< SEARCH\n' +
  '  for (int i = 0; i <= n; ++i) {\n' +
  '    s += v[i];\n' +
  '  }\n' +
  '=======\n' +
  '  for (int x : v) {\n' +
  '    s += x;\n' +
  '  }\n' +
  '>>>>>>> REPLACE\n' +
  '```\n';
export const kSummary = 'Iterate over the vector\'s elements instead of an index bound by n.';
// The whole-line edit kAnswer makes of kSum: lines 4-5 (0-based) become these.
export const kNewLoop = '  for (int x : v) {\n    s += x;\n';

// A reasoning long enough (~12K tokens) to be cancelled while it runs.
export function longThinking() {
  let t = '';
  for (let i = 0; i < 3000; ++i) t += `step ${i} `;
  return t;
}

// The settings every test server gets (a small context keeps the tiny model fast).
export const kInitOptions = { context: 2048, maxTokens: 400 };

// vscode-languageserver-protocol (with vscode-jsonrpc), or a clear error when it is not installed.
export async function loadProtocol() {
  try {
    return (await import('vscode-languageserver-protocol/node')).default;
  } catch (e) {
    throw new Error(`vscode-languageserver-protocol is not installed: run scripts/setup.sh (npm ci in tests/lsp/node) (${e.message})`);
  }
}

export function ponderBinary() {
  const p = process.env.PONDER_BINARY;
  if (!p || !fs.existsSync(p)) throw new Error(`PONDER_BINARY must name the built ponder (got ${p ?? 'nothing'})`);
  return p;
}

let generatedModel = null;
export function testModel() {
  if (process.env.PONDER_TEST_MODEL) {
    if (!fs.existsSync(process.env.PONDER_TEST_MODEL))
      throw new Error(`PONDER_TEST_MODEL ${process.env.PONDER_TEST_MODEL} does not exist`);
    return process.env.PONDER_TEST_MODEL;
  }
  if (generatedModel) return generatedModel;
  const maker = path.join(path.dirname(ponderBinary()), 'make_test_model');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ponder-lsp-model-'));
  const out = path.join(dir, 'm.gguf');
  const r = spawnSync(maker, ['--arch', 'qwen2', '--type', 'q8_0', '--out', out], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${maker} failed: ${r.stderr}`);
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  generatedModel = out;
  return out;
}

// The URI ponder writes for a path (lsp/protocol.cpp path_to_uri: all but [A-Za-z0-9/-_.~]
// percent-encoded); the same as node's for the plain temporary paths these tests use.
export function uriOf(p) {
  const uri = pathToFileURL(p).href;
  if (!/^[A-Za-z0-9/_.~-]*$/.test(p)) throw new Error(`a test path with unusual characters: ${p}`);
  return uri;
}

// A temporary workspace: src/sum.cpp, src/util.py and `extra` files; removed by cleanup().
export function makeWorkspace(extra = {}) {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'ponder-lsp-e2e-')));
  const files = { 'src/sum.cpp': kSum, 'src/util.py': 'def helper(x):\n    return x + 1\n', ...extra };
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  }
  return {
    dir,
    uri: (rel) => uriOf(path.join(dir, rel)),
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

// Starts `ponder lsp` on `workspace` with every generation forced to `answer` (none: free
// sampling). `stdout` holds every byte the server wrote there (checked by framesOf);
// `exited` resolves to {code, signal}.
export function startServer(workspace, { answer = kAnswer, args = [] } = {}) {
  const argv = ['lsp', '--model', testModel(), '--cache-dir', path.join(workspace.dir, '.cache'), ...args];
  if (answer !== null) {
    const file = path.join(workspace.dir, `.answer-${Math.random().toString(36).slice(2)}.txt`);
    fs.writeFileSync(file, answer);
    argv.push('--force-answer', file);
  }
  // Its temporary files (the reasoning documents it opens) stay in the workspace, removed with it.
  const tmp = path.join(workspace.dir, '.tmp');
  fs.mkdirSync(tmp, { recursive: true });
  const env = { ...process.env, TMPDIR: tmp };
  const child = spawn(ponderBinary(), argv, { cwd: workspace.dir, env, stdio: ['pipe', 'pipe', 'pipe'] });
  const server = { child, stdout: [], stderr: '' };
  child.stdout.on('data', (b) => server.stdout.push(b));
  child.stderr.on('data', (b) => { server.stderr += b.toString('utf8'); });
  child.stdin.on('error', () => {});  // writing to a server that is gone is what some tests do
  server.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return server;
}

// The exit of `server` within `ms`, else a failure (the process is killed).
export async function exitOf(server, ms = 10000) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => {
      server.child.kill('SIGKILL');
      reject(new Error(`ponder lsp did not exit within ${ms} ms; stderr:\n${server.stderr}`));
    }, ms);
  });
  try {
    return await Promise.race([server.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// Splits `bytes` into LSP frames, strictly: each is `Content-Length: N\r\n` (other headers
// allowed), a blank line and N bytes of JSON-RPC 2.0. Anything else in the stream throws: stdout
// belongs to the protocol. Returns {messages, rest} (rest: an incomplete last frame).
export function framesOf(bytes) {
  const messages = [];
  let at = 0;
  while (at < bytes.length) {
    const end = bytes.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const headers = bytes.subarray(at, end).toString('latin1').split('\r\n');
    let length = null;
    for (const h of headers) {
      const m = /^([A-Za-z-]+): (.*)$/.exec(h);
      if (!m) throw new Error(`stdout holds something that is not an LSP header: ${JSON.stringify(h.slice(0, 200))}`);
      if (m[1].toLowerCase() === 'content-length') {
        if (!/^[0-9]+$/.test(m[2])) throw new Error(`bad Content-Length on stdout: ${m[2]}`);
        length = Number(m[2]);
      }
    }
    if (length === null) throw new Error(`a frame on stdout without Content-Length: ${headers.join(' | ')}`);
    if (end + 4 + length > bytes.length) break;
    const body = bytes.subarray(end + 4, end + 4 + length);
    const text = new TextDecoder('utf-8', { fatal: true }).decode(body);  // throws on invalid UTF-8
    const message = JSON.parse(text);
    if (message === null || typeof message !== 'object' || Array.isArray(message) || message.jsonrpc !== '2.0')
      throw new Error(`not a JSON-RPC 2.0 message on stdout: ${text.slice(0, 200)}`);
    messages.push(message);
    at = end + 4 + length;
  }
  return { messages, rest: bytes.subarray(at) };
}

// Every message the server wrote, checking that stdout held nothing else and ended on a frame.
export function allFrames(server) {
  const { messages, rest } = framesOf(Buffer.concat(server.stdout));
  if (rest.length !== 0) throw new Error(`stdout ends inside a frame: ${JSON.stringify(rest.toString('latin1').slice(0, 200))}`);
  return messages;
}

export function frame(body) {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body), 'utf8');
  return Buffer.concat([Buffer.from(`Content-Length: ${bytes.length}\r\n\r\n`, 'latin1'), bytes]);
}

export const pos = (line, character) => ({ line, character });
export const range = (l0, c0, l1 = l0, c1 = c0) => ({ start: pos(l0, c0), end: pos(l1, c1) });

// Applies LSP text edits (UTF-16 positions, as JS strings count) to `text`, as an editor does.
export function applyEdits(text, edits) {
  const offset = (p) => {
    let at = 0;
    for (let l = 0; l < p.line; ++l) {
      const nl = text.indexOf('\n', at);
      if (nl < 0) return text.length;
      at = nl + 1;
    }
    let end = text.indexOf('\n', at);
    if (end < 0) end = text.length;
    return Math.min(at + p.character, end);
  };
  const spans = edits.map((e) => ({ b: offset(e.range.start), e: offset(e.range.end), t: e.newText }));
  spans.sort((x, y) => y.b - x.b);
  for (const s of spans) text = text.slice(0, s.b) + s.t + text.slice(s.e);
  return text;
}
