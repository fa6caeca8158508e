// SPDX-License-Identifier: MIT
// Compares coring's and llhttp's outcomes case by case (the "#..." detail after REJECT is not
// compared). A disagreement is accepted only where corpus.txt says why coring differs; an
// explained case that now agrees is reported too, so the explanations stay true.
'use strict';
const fs = require('fs');
const { readCorpus } = require('./corpus.js');

const [corpusPath, coringPath, llhttpPath] = process.argv.slice(2);
const read = (p) => {
  const m = new Map();
  for (const line of fs.readFileSync(p, 'utf8').split('\n')) {
    if (line === '') continue;
    const fields = line.split('\t');
    const full = fields.slice(1).join('\t');
    m.set(fields[0], { cmp: fields.slice(1).filter((f) => !f.startsWith('#')).join('\t'), full });
  }
  return m;
};
const coring = read(coringPath);
const llhttp = read(llhttpPath);
const cut = (s) => (s.length > 160 ? `${s.slice(0, 160)}...` : s);
let unexplained = 0, explained = 0, stale = 0, agree = 0;
for (const c of readCorpus(corpusPath)) {
  const a = coring.get(c.name), b = llhttp.get(c.name);
  if (!a || !b) { console.log(`MISSING  ${c.name}`); ++unexplained; continue; }
  if (a.cmp === b.cmp) {
    if (c.why) { console.log(`STALE    ${c.name}: agrees now, but corpus.txt explains a difference`); ++stale; }
    else ++agree;
    continue;
  }
  if (c.why) {
    console.log(`EXPLAINED ${c.name}\n    coring: ${cut(a.full)}\n    llhttp: ${cut(b.full)}\n    why: ${c.why}`);
    ++explained;
  } else {
    console.log(`DIFFERENT ${c.name}\n    coring: ${cut(a.full)}\n    llhttp: ${cut(b.full)}`);
    ++unexplained;
  }
}
console.log(`${agree} agree, ${explained} differ with a reason, ${unexplained} differ without one, ${stale} stale reasons`);
process.exit(unexplained + stale > 0 ? 1 : 0);
