// SPDX-License-Identifier: MIT
// Writes the corpus's requests for driver.cpp: name LF length LF bytes, one case after another.
'use strict';
const { readCorpus } = require('./corpus.js');

const parts = [];
for (const c of readCorpus(process.argv[2])) {
  const bytes = Buffer.from(c.request, 'latin1');
  parts.push(Buffer.from(`${c.name}\n${bytes.length}\n`), bytes);
}
process.stdout.write(Buffer.concat(parts));
