#!/usr/bin/env node
// Compiles the project's own contracts (contracts/src/*.sol) with the pinned solc-js through
// its standard-JSON interface and writes contracts/build/<Name>.json with the ABI, bytecode,
// deployed bytecode, and the compiler version and settings used.
//
// Why a script and not `solcjs --bin`: standard JSON pins every setting in one place and
// records it next to the output, and relative source names keep the output byte-identical
// on every machine, so a test can recompile and compare with the committed build.
//
// Usage: node contracts/compile.js [--out DIR]   (default DIR: contracts/build)
'use strict';

const fs = require('fs');
const path = require('path');

const ROOT = path.resolve(__dirname, '..');
const SRC = path.join(__dirname, 'src');
const NODE_MODULES = path.join(ROOT, 'node_modules');
const solc = require(path.join(NODE_MODULES, 'solc'));

// Pinned: changing any of these changes the committed bytecode.
const SOLC_VERSION = '0.8.37+commit.f401782d.Emscripten.clang';
const SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  // Cancun runs on anvil and on every current testnet.
  evmVersion: 'cancun',
  metadata: { bytecodeHash: 'ipfs' },
  outputSelection: {
    '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] },
  },
};

function parseArgs(argv) {
  let out = path.join(__dirname, 'build');
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out' && i + 1 < argv.length) {
      out = path.resolve(argv[++i]);
    } else {
      throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  return { out };
}

// Imports are resolved from the project's node_modules only (e.g. @openzeppelin/...).
function findImport(importPath) {
  const candidate = path.join(NODE_MODULES, importPath);
  if (!candidate.startsWith(NODE_MODULES + path.sep) || !fs.existsSync(candidate)) {
    return { error: `import not found: ${importPath}` };
  }
  return { contents: fs.readFileSync(candidate, 'utf8') };
}

function main() {
  const { out } = parseArgs(process.argv.slice(2));
  if (solc.version() !== SOLC_VERSION) {
    throw new Error(`solc ${solc.version()} installed, ${SOLC_VERSION} pinned: run npm ci`);
  }
  const names = fs.readdirSync(SRC).filter((f) => f.endsWith('.sol')).sort();
  const sources = {};
  for (const name of names) {
    sources[`src/${name}`] = { content: fs.readFileSync(path.join(SRC, name), 'utf8') };
  }
  const input = { language: 'Solidity', sources, settings: SETTINGS };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport }));
  const errors = (output.errors || []).filter((e) => e.severity === 'error');
  for (const e of output.errors || []) process.stderr.write(e.formattedMessage + '\n');
  if (errors.length > 0) process.exit(1);

  fs.mkdirSync(out, { recursive: true });
  for (const name of names) {
    const sourceName = `src/${name}`;
    for (const [contractName, contract] of Object.entries(output.contracts[sourceName] || {})) {
      // Interfaces compile to empty bytecode: only deployable contracts are written.
      if (!contract.evm.bytecode.object) continue;
      const artifact = {
        contractName,
        sourceName,
        abi: contract.abi,
        bytecode: '0x' + contract.evm.bytecode.object,
        deployedBytecode: '0x' + contract.evm.deployedBytecode.object,
        compiler: { name: 'solc-js', version: SOLC_VERSION, settings: SETTINGS },
      };
      const file = path.join(out, `${contractName}.json`);
      fs.writeFileSync(file, JSON.stringify(artifact, null, 2) + '\n');
      process.stdout.write(`wrote ${path.relative(ROOT, file) || file}\n`);
    }
  }
}

main();
