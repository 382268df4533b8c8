// Validates SARIF files against the SARIF 2.1.0 JSON schema (the rtm.5 text, as schemastore
// publishes it; shipped by @microsoft/jest-sarif) with ajv 6, which reads draft-04 schemas.
//   node validate_sarif.js FILE...   exit 0 when every file is valid; else 1, errors on stderr
"use strict";
const fs = require("fs");
const path = require("path");
const Ajv = require("ajv");

const schemaFile = path.join(__dirname, "node_modules/@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json");
const schema = JSON.parse(fs.readFileSync(schemaFile, "utf8"));
// ajv's own draft-07 meta-schema warns that its $id is ignored in draft-04 mode: not our concern.
const quiet = { log() {}, warn() {}, error: console.error };
const ajv = new Ajv({ schemaId: "id", allErrors: true, format: "full", logger: quiet });
ajv.addMetaSchema(require("ajv/lib/refs/json-schema-draft-04.json"));
const validate = ajv.compile(schema);

let failed = 0;
for (const file of process.argv.slice(2)) {
  let log;
  try {
    log = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    console.error(`${file}: not JSON: ${e.message}`);
    failed++;
    continue;
  }
  if (log.version !== "2.1.0") {
    console.error(`${file}: version is ${JSON.stringify(log.version)}, not "2.1.0"`);
    failed++;
  }
  if (!validate(log)) {
    for (const err of validate.errors) console.error(`${file}: ${err.dataPath || "/"} ${err.message} ${JSON.stringify(err.params)}`);
    failed++;
  } else {
    console.log(`${file}: valid SARIF 2.1.0`);
  }
}
if (process.argv.length < 3) {
  console.error("usage: node validate_sarif.js FILE...");
  process.exit(2);
}
process.exit(failed ? 1 : 0);
