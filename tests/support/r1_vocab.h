#pragma once
// (being written) The R1 distills' tokenizer.json, made from the npm reference packages.
