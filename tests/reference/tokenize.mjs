// tokenize.mjs TOKENIZER_JSON CORPUS.json OUT.json [--config TOKENIZER_CONFIG.json] [--passes N]
//
// Encodes every document of CORPUS.json ([{"name", "text"}], see make_corpus.mjs) with the
// reference tokenizer, @lenml/tokenizers (a fork of transformers.js), and writes
// [{"name", "ids": [...], "nfc": text.normalize("NFC")}]. No BOS/EOS: add_special_tokens is
// false (added tokens written in the text are still matched, as Hugging Face does).
// The tokenizer_config.json defaults to the one beside TOKENIZER_JSON.
// Prints the encoding throughput (UTF-8 MB of text per second, loading excluded) to stderr, once
// per pass; ids come from the first pass.
import fs from "node:fs";
import path from "node:path";
import { TokenizerLoader } from "@lenml/tokenizers";

const args = process.argv.slice(2);
let configPath = null;
let passes = 1;
const positional = [];
for (let i = 0; i < args.length; ++i) {
  if (args[i] === "--config") configPath = args[++i];
  else if (args[i] === "--passes") passes = Math.max(1, parseInt(args[++i], 10) || 1);
  else positional.push(args[i]);
}
if (positional.length !== 3) {
  console.error("usage: node tokenize.mjs TOKENIZER_JSON CORPUS.json OUT.json [--config TOKENIZER_CONFIG.json] [--passes N]");
  process.exit(2);
}
const [tokenizerPath, corpusPath, outPath] = positional;
configPath ??= path.join(path.dirname(tokenizerPath), "tokenizer_config.json");

const readJson = (p) => JSON.parse(fs.readFileSync(p, "utf8"));
let t0 = performance.now();
const tokenizer = TokenizerLoader.fromPreTrained({
  tokenizerJSON: readJson(tokenizerPath),
  tokenizerConfig: readJson(configPath),
});
const loadSeconds = (performance.now() - t0) / 1000;

const corpus = readJson(corpusPath);
const bytes = corpus.reduce((n, d) => n + Buffer.byteLength(d.text, "utf8"), 0);
let results = null;
for (let pass = 0; pass < passes; ++pass) {
  t0 = performance.now();
  const ids = corpus.map((d) => tokenizer.encode(d.text, { add_special_tokens: false }));
  const seconds = (performance.now() - t0) / 1000;
  const tokens = ids.reduce((n, x) => n + x.length, 0);
  console.error(`reference: pass ${pass + 1}: ${corpus.length} documents, ${(bytes / 1e6).toFixed(2)} MB, ` +
                `${tokens} tokens in ${seconds.toFixed(3)} s = ${(bytes / 1e6 / seconds).toFixed(2)} MB/s ` +
                `(load ${loadSeconds.toFixed(2)} s, node ${process.version})`);
  results ??= ids;
}
fs.writeFileSync(outPath, JSON.stringify(corpus.map((d, i) => ({
  name: d.name,
  ids: results[i],
  nfc: d.text.normalize("NFC"),
}))));
