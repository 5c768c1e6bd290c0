import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // integration suites each start their own nats-server; two cores, so keep parallelism modest
    maxWorkers: 2,
    minWorkers: 1,
    // every gateway a test starts picks a free gRPC port (the default 50051 would collide between files)
    env: { GRPC_PORT: "0" }
  }
})
