// llama.cpp, as node-llama-cpp ships it prebuilt (its CPU libraries only; nothing is built or
// downloaded), run on GGUF files for ponder's tests and benchmarks. llama.cpp shares no code
// with ponder: it reads the file, dequantizes and multiplies with its own kernels.
//
//   node llama.mjs logprobs JOBS.json
//       JOBS.json: [{"model": PATH, "ids": [..], "out": PATH}, ...]. For each job: the
//       log-probabilities of the next token after every position of `ids` (fed as one prompt,
//       F32 KV cache, no flash attention; the logits less their log-sum-exp: node-llama-cpp
//       3.21 gives the softmax of the logits, not the logits), written to `out` as
//       ids.length x n_vocab float32 little-endian, row-major by token id. Prints one JSON line:
//       {"cpu": llama.cpp's system info, "n_vocab": [...]}.
//   node llama.mjs bench MODEL [-p 512] [-n 128] [-t THREADS] [-r REPS]
//       llama-bench's two tests: pp (a prompt of p tokens in one batch) and tg (n tokens one at
//       a time, greedy), with the default F16 KV cache; prints one line per repetition and the
//       median, in tokens/s, and llama.cpp's system info (which CPU kernels it loaded).
import {getLlama} from "node-llama-cpp";
import fs from "node:fs";

function fail(msg) {
  process.stderr.write(`llama.mjs: ${msg}\n`);
  process.exit(1);
}

async function loadLlama() {
  // build: "never": use the prebuilt binaries of @node-llama-cpp/linux-x64 or fail.
  return getLlama({gpu: false, build: "never", logLevel: "error", progressLogs: false});
}

async function logprobs(jobsPath) {
  const jobs = JSON.parse(fs.readFileSync(jobsPath, "utf8"));
  const llama = await loadLlama();
  const sizes = [];
  for (const job of jobs) {
    const model = await llama.loadModel({modelPath: job.model, gpuLayers: 0});
    const ctx = await model.createContext({
      contextSize: Math.max(64, job.ids.length + 8),
      batchSize: Math.max(64, job.ids.length),
      threads: 2,
      flashAttention: false,
      experimentalKvCacheKeyType: "F32",
      experimentalKvCacheValueType: "F32",
    });
    const seq = ctx.getSequence();
    const out = await seq.controlledEvaluate(job.ids.map((t) => [t, {generateNext: {probabilities: true}}]));
    let nVocab = 0;
    const rows = [];
    for (let i = 0; i < job.ids.length; ++i) {
      const map = out[i]?.next?.probabilities;
      if (!map) fail(`${job.model}: no probabilities for position ${i}`);
      if (nVocab === 0) nVocab = map.size;
      if (map.size !== nVocab) fail(`${job.model}: position ${i} has ${map.size} probabilities, not ${nVocab}`);
      const row = new Float32Array(nVocab).fill(NaN);
      for (const [id, p] of map) {
        if (id < 0 || id >= nVocab) fail(`${job.model}: token id ${id} outside 0..${nVocab - 1}`);
        if (!(p > 0)) fail(`${job.model}: position ${i}: probability ${p} of token ${id} (underflow?)`);
        row[id] = Math.log(p);
      }
      rows.push(row);
    }
    const buf = Buffer.alloc(4 * nVocab * rows.length);
    rows.forEach((row, i) => Buffer.from(row.buffer).copy(buf, 4 * nVocab * i));
    fs.writeFileSync(job.out, buf);
    sizes.push(nVocab);
    await ctx.dispose();
    await model.dispose();
  }
  console.log(JSON.stringify({cpu: llama.systemInfo.trim(), n_vocab: sizes}));
}

function median(v) {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function bench(args) {
  const modelPath = args[0];
  const opt = {p: 512, n: 128, t: 2, r: 3};
  for (let i = 1; i < args.length; i += 2) {
    const key = args[i].replace(/^-+/, "");
    if (!(key in opt) || args[i + 1] === undefined) fail(`bench: unknown option ${args[i]}`);
    opt[key] = Number(args[i + 1]);
  }
  const llama = await loadLlama();
  const model = await llama.loadModel({modelPath, gpuLayers: 0, useMmap: true});
  const ctx = await model.createContext({
    contextSize: opt.p + opt.n + 16, batchSize: opt.p, threads: opt.t, flashAttention: false,
  });
  const seq = ctx.getSequence();
  // Ids below 600: ordinary tokens in every vocabulary ponder's generator writes (the time does
  // not depend on which tokens they are).
  const prompt = Array.from({length: opt.p}, (_, i) => 10 + (i * 7919) % 590);
  console.log(`llama.cpp: ${llama.systemInfo.trim()}`);
  const clear = () => seq.eraseContextTokenRanges([{start: 0, end: seq.nextTokenIndex}]);
  const pp = [], tg = [];
  for (let r = 0; r <= opt.r; ++r) {  // run 0 warms up, as llama-bench does
    await clear();
    const t0 = performance.now();
    await seq.evaluateWithoutGeneratingNewTokens(prompt);
    const p = opt.p / ((performance.now() - t0) / 1000);
    await clear();
    let n = 0, t1 = 0;
    // yieldEogToken: an end-of-generation token must not end the loop early (the rate would be
    // opt.n tokens over a shorter time).
    for await (const tok of seq.evaluate([prompt[0]], {temperature: 0, yieldEogToken: true})) {
      void tok;
      if (n === 0) t1 = performance.now();  // the first token is the prompt's: not counted
      if (++n > opt.n) break;
    }
    if (n !== opt.n + 1) fail(`bench: generation stopped after ${n - 1} of ${opt.n} tokens`);
    const g = opt.n / ((performance.now() - t1) / 1000);
    if (r === 0) continue;
    pp.push(p);
    tg.push(g);
    console.log(`run ${r}: pp${opt.p} ${p.toFixed(2)} t/s  tg${opt.n} ${g.toFixed(2)} t/s`);
  }
  console.log(`llama.cpp  threads ${opt.t}  pp${opt.p} ${median(pp).toFixed(2)} t/s  tg${opt.n} ${median(tg).toFixed(2)} t/s (medians of ${opt.r})`);
}

const [cmd, ...rest] = process.argv.slice(2);
if (cmd === "logprobs" && rest.length === 1) await logprobs(rest[0]);
else if (cmd === "bench" && rest.length >= 1) await bench(rest);
else fail("usage: node llama.mjs logprobs JOBS.json | bench MODEL [-p 512] [-n 128] [-t THREADS] [-r REPS]");
