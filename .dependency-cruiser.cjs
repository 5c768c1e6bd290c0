/**
 * Imports run one way: domain <- platform <- features <- edges <- main <- cli. `npm run check`
 * and the architecture test (test/architecture/Imports.test.ts) fail on a wrong arrow, naming it.
 *
 * - domain: the pure model (deciders, value types). Imports nothing of the gateway.
 * - platform: ports and adapters, and what every feature stands on: NATS, the event store, provider
 *   adapters, metrics and logs, configuration (`platform/`).
 * - features: the message pipeline's actors, read models and reactors, clients and quotas, the
 *   message use cases, the SQL outbox. They may use each other, never an edge.
 * - edges: HTTP, gRPC and the operator's console, which call the features.
 * - main.ts composes the roles; the CLI (`cli/`) starts them.
 */
const layer = (...folders) => `^src/(${folders.join("|")})/`
const domain = layer("domain")
const platform = layer("nats", "eventstore", "providers", "observability", "platform")
const features = layer("intake", "dispatch", "deliveryReports", "messages", "projections", "clients", "outbox")
const edges = layer("http", "grpc", "console")
const main = "^src/main\\.ts$"
const cli = layer("cli")

module.exports = {
  forbidden: [
    {
      name: "domain-is-pure",
      comment: "the domain imports nothing of the gateway",
      severity: "error",
      from: { path: domain },
      to: { path: "^src/", pathNot: domain }
    },
    {
      name: "platform-below-features",
      comment: "the platform knows no feature, edge, composition or command line",
      severity: "error",
      from: { path: platform },
      to: { path: [features, edges, main, cli] }
    },
    {
      name: "features-below-edges",
      comment: "a feature is called by the edges, never the other way",
      severity: "error",
      from: { path: features },
      to: { path: [edges, main, cli] }
    },
    {
      name: "edges-below-main",
      comment: "the edges are composed by main.ts, and started by the command line",
      severity: "error",
      from: { path: edges },
      to: { path: [main, cli] }
    },
    {
      name: "main-below-cli",
      severity: "error",
      from: { path: main },
      to: { path: cli }
    },
    {
      name: "no-circular",
      comment: "modules that import each other, however far round",
      severity: "error",
      from: { path: "^src/" },
      to: { circular: true }
    },
    {
      name: "not-to-test",
      comment: "the gateway's code never imports its tests or their support",
      severity: "error",
      from: { path: "^src/" },
      to: { path: "^test/" }
    }
  ],
  options: {
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    doNotFollow: { path: "node_modules" }
  }
}
