// SPDX-License-Identifier: MIT
// Reads corpus.txt: one case a line, "name | request | why coring differs (optional)", the
// request with C-style escapes (\r \n \t \\ \xHH); "#" starts a comment line.
'use strict';
const fs = require('fs');

function unescape(s) {
  let out = '';
  for (let i = 0; i < s.length; ++i) {
    if (s[i] !== '\\') { out += s[i]; continue; }
    const e = s[++i];
    if (e === 'r') out += '\r';
    else if (e === 'n') out += '\n';
    else if (e === 't') out += '\t';
    else if (e === '\\') out += '\\';
    else if (e === 'x') { out += String.fromCharCode(parseInt(s.substr(i + 1, 2), 16)); i += 2; }
    else if (e === 'R') { // \R{n,text}: text repeated n times
      const close = s.indexOf('}', i);
      const [n, text] = s.substring(i + 2, close).split(',');
      out += unescape(text).repeat(Number(n));
      i = close;
    } else throw new Error(`bad escape \\${e} in ${s}`);
  }
  return out;
}

function readCorpus(path) {
  const cases = [];
  for (const line of fs.readFileSync(path, 'latin1').split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const parts = line.split(' | ');
    if (parts.length < 2) throw new Error(`bad corpus line: ${line}`);
    cases.push({ name: parts[0].trim(), request: unescape(parts[1]), why: parts.slice(2).join(' | ').trim() });
  }
  return cases;
}

module.exports = { readCorpus, unescape };
