// SPDX-License-Identifier: MIT
// The HTTP server benchmark's Node peer (issue 14; run by http_server_run.sh): GET /plaintext
// ("Hello, World!", text/plain) and GET /json ({"Hello":"World"}) on Node's http module, one
// process. Serves 127.0.0.1:<port> until SIGINT or SIGTERM.
// Usage: node http_server_node.js <port>
'use strict';
const http = require('http');

const port = Number(process.argv[2]);
const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/plaintext') {
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.end('Hello, World!');
    } else if (req.method === 'GET' && req.url === '/json') {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ Hello: 'World' }));
    } else {
        res.writeHead(404);
        res.end();
    }
});
server.keepAliveTimeout = 300000; // as nginx's keepalive_timeout in http_server_run.sh
server.listen(port, '127.0.0.1', () => {
    console.log(`listening on 127.0.0.1:${server.address().port}`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
