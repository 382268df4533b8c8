// Checks a built .vsix: `node scripts/check-vsix.mjs FILE.vsix`. A .vsix is a zip; this reads its
// central directory (no dependency) and checks that it holds the compiled extension, its
// webview media, its manifest and runtime dependencies, and no sources, tests or tooling.
import { readFileSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';

const file = process.argv[2];
if (!file) {
  console.error('usage: node scripts/check-vsix.mjs FILE.vsix');
  process.exit(2);
}
const zip = readFileSync(file);

/** name → { method, offset, compressedSize } from the zip's central directory. */
function entries(buf) {
  let eocd = buf.length - 22;
  while (eocd >= 0 && buf.readUInt32LE(eocd) !== 0x06054b50) --eocd;
  if (eocd < 0) throw new Error(`${file}: not a zip file`);
  const count = buf.readUInt16LE(eocd + 10);
  let at = buf.readUInt32LE(eocd + 16);
  const out = new Map();
  for (let i = 0; i < count; ++i) {
    if (buf.readUInt32LE(at) !== 0x02014b50) throw new Error(`${file}: bad central directory`);
    const method = buf.readUInt16LE(at + 10);
    const compressedSize = buf.readUInt32LE(at + 20);
    const nameLength = buf.readUInt16LE(at + 28);
    const extraLength = buf.readUInt16LE(at + 30);
    const commentLength = buf.readUInt16LE(at + 32);
    const offset = buf.readUInt32LE(at + 42);
    out.set(buf.toString('utf8', at + 46, at + 46 + nameLength), { method, offset, compressedSize });
    at += 46 + nameLength + extraLength + commentLength;
  }
  return out;
}

function read(buf, e) {
  const start = e.offset + 30 + buf.readUInt16LE(e.offset + 26) + buf.readUInt16LE(e.offset + 28);
  const data = buf.subarray(start, start + e.compressedSize);
  return (e.method === 8 ? inflateRawSync(data) : data).toString('utf8');
}

const files = entries(zip);
const names = [...files.keys()];
const problems = [];
const need = (name) => {
  if (!files.has(name)) problems.push(`missing ${name}`);
};

for (const name of [
  'extension.vsixmanifest',
  '[Content_Types].xml',
  'extension/package.json',
  'extension/readme.md',
  'extension/out/src/extension.js',
  'extension/out/src/reasoningPanel.js',
  'extension/out/src/settings.js',
  'extension/out/src/status.js',
  'extension/out/src/reasoning.js',
  'extension/media/reasoning.js',
  'extension/media/reasoning.css',
  'extension/media/ponder.svg',
  'extension/node_modules/vscode-languageclient/package.json',
  'extension/node_modules/vscode-languageclient/node.js',
  'extension/node_modules/vscode-languageserver-protocol/package.json',
  'extension/node_modules/vscode-jsonrpc/package.json',
]) {
  need(name);
}
// Every compiled module the extension requires is there.
const required = new Set();
for (const name of names.filter((n) => /^extension\/out\/src\/[^/]+\.js$/.test(n))) {
  for (const m of read(zip, files.get(name)).matchAll(/require\("\.\/([^"]+)"\)/g)) required.add(`extension/out/src/${m[1]}.js`);
}
for (const name of required) need(name);

const forbidden = [
  [/^extension\/src\//, 'TypeScript sources'],
  [/^extension\/test/, 'test sources'],
  [/^extension\/out\/test/, 'compiled tests'],
  [/\.ts$/, 'TypeScript files'],
  [/\.map$/, 'source maps'],
  [/^extension\/node_modules\/(typescript|eslint|@vscode\/vsce|@types|typescript-eslint|@eslint)\//, 'development dependencies'],
  [/^extension\/(tsconfig\.json|eslint\.config\.mjs|\.npmrc|scripts\/)/, 'tooling'],
  [/\.vsix$/, 'another package'],
];
for (const [pattern, what] of forbidden) {
  const hits = names.filter((n) => pattern.test(n));
  if (hits.length > 0) problems.push(`${what}: ${hits.slice(0, 3).join(', ')}${hits.length > 3 ? ', …' : ''}`);
}

const manifest = JSON.parse(read(zip, files.get('extension/package.json')));
const source = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
if (manifest.version !== source.version) problems.push(`version ${manifest.version}, package.json says ${source.version}`);
if (manifest.main !== './out/src/extension.js') problems.push(`main is ${manifest.main}`);
if (!files.has(`extension/${manifest.main.replace(/^\.\//, '')}`)) problems.push(`main ${manifest.main} is not in the package`);
const xml = read(zip, files.get('extension.vsixmanifest'));
if (!xml.includes(`Id="ponder" Version="${source.version}" Publisher="ponder"`)) problems.push('extension.vsixmanifest: unexpected identity');

if (problems.length > 0) {
  console.error(`${file}: ${problems.length} problem(s)\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(`${file}: ${names.length} files, ${(zip.length / 1024).toFixed(0)} KiB; ok`);
