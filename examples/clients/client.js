#!/usr/bin/env node
// The calling rule, in Node.js, with nothing but Node's standard library:
//
//   call the endpoint you have; if the connection fails or the endpoint answers
//   "not found", read /registry/<service> again and retry once; if that fails,
//   it has failed.
//
//   node client.js [--mount DIR] [--seconds N] [--interval S] SERVICE PATH
// Prints one line per failed call and a JSON summary at the end (the same
// summary as client.py, client.sh and Client.java).
'use strict';
const fs = require('fs');
const http = require('http');
const path = require('path');

// A health-checked host:port; throws when the service has none (EHOSTDOWN, ENOENT).
function lookup(mount, service) {
  return fs.readFileSync(path.join(mount, service), 'utf8').trim();
}

// One request; a refused connection or an answer of 400 and up (404: "not found") rejects.
function call(endpoint, urlPath) {
  return new Promise((resolve, reject) => {
    const req = http.get(`http://${endpoint}${urlPath}`, { timeout: 2000 }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode >= 400
        ? reject(new Error(`${endpoint}${urlPath} answered ${res.statusCode}`)) : resolve()));
    });
    req.on('timeout', () => req.destroy(new Error(`${endpoint}${urlPath} timed out`)));
    req.on('error', reject);
  });
}

async function main() {
  const args = process.argv.slice(2);
  let mount = '/registry', seconds = 10, interval = 0.05;
  const rest = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--mount') mount = args[++i];
    else if (args[i] === '--seconds') seconds = Number(args[++i]);
    else if (args[i] === '--interval') interval = Number(args[++i]);
    else rest.push(args[i]);
  }
  if (rest.length !== 2) {
    console.error('usage: node client.js [--mount DIR] [--seconds N] [--interval S] SERVICE PATH');
    process.exit(2);
  }
  const [service, urlPath] = rest;
  const stats = { calls: 0, ok: 0, rereads: 0, failed: 0, endpoints: [] };
  let endpoint = null;
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    stats.calls++;
    for (let attempt = 1; attempt <= 2; attempt++) {
      try {
        if (endpoint === null || attempt === 2) {
          if (attempt === 2) stats.rereads++;
          endpoint = lookup(mount, service);
          if (!stats.endpoints.includes(endpoint)) stats.endpoints.push(endpoint);
        }
        await call(endpoint, urlPath);
        stats.ok++;
        break;
      } catch (e) {
        if (attempt === 2) {
          stats.failed++;
          console.log(`call failed twice: ${e.message}`);
        }
      }
    }
    await new Promise((r) => setTimeout(r, interval * 1000));
  }
  console.log(JSON.stringify(stats));
}

main();
