// Validates the machine-readable outputs of `ponder review` against their schemas with ajv 6:
//   node validate.js sarif FILE...    the SARIF 2.1.0 schema (the rtm.5 text, as schemastore
//                                     publishes it; shipped by @microsoft/jest-sarif; draft-04)
//   node validate.js review FILE...   ponder-review.schema.json beside this file (`--format json`)
// Exit 0 when every file is valid; 1 otherwise, with the errors on stderr; 2 for bad usage.
"use strict";
const fs = require("fs");
const path = require("path");
const Ajv = require("ajv");

const schemas = {
  sarif: path.join(__dirname, "node_modules/@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json"),
  review: path.join(__dirname, "ponder-review.schema.json"),
};
const kind = process.argv[2];
const files = process.argv.slice(3);
if (!schemas[kind] || files.length === 0) {
  console.error("usage: node validate.js sarif|review FILE...");
  process.exit(2);
}
const schema = JSON.parse(fs.readFileSync(schemas[kind], "utf8"));
// ajv's own draft-07 meta-schema warns that its $id is ignored in draft-04 mode: not our concern.
const quiet = { log() {}, warn() {}, error: console.error };
const ajv =
  kind === "sarif"
    ? new Ajv({ schemaId: "id", allErrors: true, format: "full", logger: quiet })
    : new Ajv({ allErrors: true, format: "full" });
if (kind === "sarif") ajv.addMetaSchema(require("ajv/lib/refs/json-schema-draft-04.json"));
const validate = ajv.compile(schema);

let failed = 0;
for (const file of files) {
  let doc;
  try {
    doc = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    console.error(`${file}: not JSON: ${e.message}`);
    failed++;
    continue;
  }
  if (kind === "sarif" && doc.version !== "2.1.0") {
    console.error(`${file}: version is ${JSON.stringify(doc.version)}, not "2.1.0"`);
    failed++;
  }
  if (!validate(doc)) {
    for (const err of validate.errors) console.error(`${file}: ${err.dataPath || "/"} ${err.message} ${JSON.stringify(err.params)}`);
    failed++;
  } else {
    console.log(`${file}: valid (${kind})`);
  }
}
process.exit(failed ? 1 : 0);
