/**
 * An OTLP/HTTP trace receiver on loopback for measuring what traces cost: it takes every
 * `POST /v1/traces` (JSON), counts the spans, and prints `{"spans": n, "requests": m}` when stopped.
 *
 *   PORT=4318 node --import tsx bench/otlp-sink.ts &
 *   OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 N=20000 npm run bench
 *   kill %1
 */
import { createServer } from "node:http"

let spans = 0
let requests = 0
const server = createServer((req, res) => {
  const chunks: Array<Buffer> = []
  req.on("data", (chunk: Buffer) => chunks.push(chunk))
  req.on("end", () => {
    requests++
    try {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
        resourceSpans?: ReadonlyArray<{ scopeSpans?: ReadonlyArray<{ spans?: ReadonlyArray<unknown> }> }>
      }
      for (const resource of body.resourceSpans ?? [])
        for (const scope of resource.scopeSpans ?? []) spans += scope.spans?.length ?? 0
    } catch {
      // not JSON: counted as a request, no spans
    }
    res.writeHead(200, { "content-type": "application/json" }).end("{}")
  })
})
server.listen(Number(process.env.PORT ?? 4318), "127.0.0.1")
const report = () => {
  process.stdout.write(`${JSON.stringify({ spans, requests })}\n`)
  process.exit(0)
}
process.on("SIGTERM", report)
process.on("SIGINT", report)
