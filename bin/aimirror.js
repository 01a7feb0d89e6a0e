#!/usr/bin/env node
// Published entry: runs the compiled CLI when present, the TypeScript source otherwise (Node >= 22.18 strips types).
import { existsSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { dirname, join } from 'node:path'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const compiled = join(root, 'dist', 'cli', 'main.js')
const entry = existsSync(compiled) ? compiled : join(root, 'cli', 'main.ts')
await import(pathToFileURL(entry).href)
