// Runs a WASI preview 1 program under Node.js's built-in WASI, for checking the test
// programs without the runtime: node scripts/wasi-run.mjs prog.wasm [args...]
// Stdio is the process's own; the exit status is the program's (a trap exits 134).
// Environment: only the variables named in WASI_ENV ("K=V;K2=V2") are passed.
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';
import { argv, exit } from 'node:process';

const [file, ...args] = argv.slice(2);
const env = Object.fromEntries(
  (process.env.WASI_ENV ?? '').split(';').filter(Boolean).map((kv) => {
    const at = kv.indexOf('=');
    return [kv.slice(0, at), kv.slice(at + 1)];
  }),
);
const wasi = new WASI({ version: 'preview1', args: [file, ...args], env, returnOnExit: true });
const module = await WebAssembly.compile(await readFile(file));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
try {
  exit(wasi.start(instance));
} catch (error) {
  console.error(`trap: ${error.message}`);
  exit(134);
}
