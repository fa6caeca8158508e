// SPDX-License-Identifier: MIT
// The llhttp side of the differential test: Node's http server (llhttp, strict mode) receives
// each corpus request on a fresh connection; prints one outcome line per case, in the format
// of driver.cpp: name TAB ACCEPT TAB method target version TAB headers TAB body, or name TAB
// REJECT, or name TAB INCOMPLETE (the connection ended before a whole request arrived).
'use strict';
const http = require('http');
const net = require('net');
const { readCorpus } = require('./corpus.js');

const cases = readCorpus(process.argv[2]);
let current = null; // the case in flight: { outcome, ... }

const server = http.createServer({ insecureHTTPParser: false, requireHostHeader: false });
server.on('request', (req, res) => {
  const c = current;
  const chunks = [];
  req.on('data', (d) => chunks.push(d));
  req.on('end', () => {
    if (c.outcome === null) {
      c.outcome = ['ACCEPT', `${req.method} ${req.url} ${req.httpVersion}`,
        JSON.stringify(pairs(req.rawHeaders)), JSON.stringify(Buffer.concat(chunks).toString('latin1'))];
    }
    res.end('ok');
  });
});
server.on('clientError', (err, socket) => {
  const c = current;
  if (c !== null && c.outcome === null) {
    // End of input in the middle of a request is not a verdict on the bytes that came.
    c.outcome = err.code === 'HPE_INVALID_EOF_STATE' ? ['INCOMPLETE'] : ['REJECT', err.code];
  }
  socket.destroy();
});

function pairs(raw) {
  const out = [];
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i], raw[i + 1]]);
  return out;
}

function runCase(port, c) {
  return new Promise((resolve) => {
    current = c;
    c.outcome = null;
    const sock = net.connect(port, '127.0.0.1', () => {
      sock.end(Buffer.from(c.request, 'latin1'));
    });
    const finish = () => {
      clearTimeout(timer);
      sock.destroy();
      // Let a late 'end' or clientError for this connection land before the next case.
      setTimeout(resolve, 5);
    };
    const timer = setTimeout(finish, 1000);
    sock.on('data', () => {});
    sock.on('error', () => {});
    sock.on('close', finish);
  });
}

server.listen(0, '127.0.0.1', async () => {
  const { port } = server.address();
  for (const c of cases) {
    await runCase(port, c);
    const o = c.outcome === null ? ['INCOMPLETE'] : c.outcome;
    // REJECT's llhttp error code is informative only: print it after the compared fields.
    process.stdout.write(`${c.name}\t${o[0] === 'REJECT' ? 'REJECT' : o.join('\t')}` +
      `${o[0] === 'REJECT' ? '\t#' + o[1] : ''}\n`);
  }
  server.close();
});
