#!/usr/bin/env node
// Runs the TypeScript sources directly (tsx), so there is no build step between a clone and a run.
import { register } from "tsx/esm/api"

register()
await import(new URL("../src/cli/main.ts", import.meta.url).href)
