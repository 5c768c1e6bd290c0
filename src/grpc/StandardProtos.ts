/**
 * The standard protocols the server speaks beside its own API, as protobuf.js JSON descriptors (the
 * messages it needs, field for field as the published protos define them), so no other `.proto`
 * file has to ship:
 *
 * - `grpc.health.v1` (grpc/grpc `src/proto/grpc/health/v1/health.proto`): the health service that
 *   load balancers, Kubernetes probes and `grpcurl` ask;
 * - `google.rpc.Status`, `RetryInfo` and `BadRequest` (googleapis `google/rpc/status.proto`,
 *   `error_details.proto`): the rich error model, sent in the `grpc-status-details-bin` trailer.
 */
import type { fromJSON } from "@grpc/proto-loader"

/** A protobuf.js JSON descriptor, as proto-loader takes it. */
type INamespace = Parameters<typeof fromJSON>[0]

export const HEALTH_SERVICE = "grpc.health.v1.Health"

export const health: INamespace = {
  nested: {
    grpc: {
      nested: {
        health: {
          nested: {
            v1: {
              nested: {
                HealthCheckRequest: { fields: { service: { type: "string", id: 1 } } },
                HealthCheckResponse: {
                  fields: { status: { type: "ServingStatus", id: 1 } },
                  nested: {
                    ServingStatus: {
                      values: { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 }
                    }
                  }
                },
                Health: {
                  methods: {
                    Check: {
                      requestType: "HealthCheckRequest",
                      responseType: "HealthCheckResponse",
                      comment: "the serving status of a service now ('' = the server)"
                    },
                    Watch: {
                      requestType: "HealthCheckRequest",
                      responseType: "HealthCheckResponse",
                      responseStream: true,
                      comment: "the serving status at once, then each change"
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
  }
}

export const errorDetails: INamespace = {
  nested: {
    google: {
      nested: {
        protobuf: {
          nested: {
            Any: { fields: { type_url: { type: "string", id: 1 }, value: { type: "bytes", id: 2 } } },
            Duration: { fields: { seconds: { type: "int64", id: 1 }, nanos: { type: "int32", id: 2 } } }
          }
        },
        rpc: {
          nested: {
            Status: {
              fields: {
                code: { type: "int32", id: 1 },
                message: { type: "string", id: 2 },
                details: { rule: "repeated", type: "google.protobuf.Any", id: 3 }
              }
            },
            RetryInfo: { fields: { retry_delay: { type: "google.protobuf.Duration", id: 1 } } },
            BadRequest: {
              fields: { field_violations: { rule: "repeated", type: "FieldViolation", id: 1 } },
              nested: {
                FieldViolation: {
                  fields: { field: { type: "string", id: 1 }, description: { type: "string", id: 2 } }
                }
              }
            }
          }
        }
      }
    }
  }
}
