/** Metrics and access logs label requests by route template, for every route of the API. */
import { describe, expect, it } from "@effect/vitest"
import { routeOf } from "../../src/http/Server.js"

describe("routeOf", () => {
  it("names every route of the API by its template, the phone-number routes included", () => {
    expect(routeOf("/v1/phone-numbers/%2B447911123456")).toBe("/v1/phone-numbers/:number")
    expect(routeOf("/v1/phone-numbers/%2B447911123456/reactivate")).toBe(
      "/v1/phone-numbers/:number/reactivate"
    )
    expect(routeOf("/v1/messages")).toBe("/v1/messages")
    expect(routeOf("/v1/messages/")).toBe("/v1/messages")
    expect(routeOf("/v1/messages/2f1c?asOf=2025-01-01")).toBe("/v1/messages/:id")
    expect(routeOf("/v1/messages/2f1c/events")).toBe("/v1/messages/:id/events")
    expect(routeOf("/v1/clients/keys/k1")).toBe("/v1/clients/keys/:keyId")
    expect(routeOf("/v1/clients/shop/usage")).toBe("/v1/clients/:clientId/usage")
    expect(routeOf("/v1/providers/sim/delivery-reports")).toBe("/v1/providers/:provider/delivery-reports")
    expect(routeOf("/metrics")).toBe("/metrics")
    expect(routeOf("/docs/index.html")).toBe("/docs")
    expect(routeOf("/openapi.json")).toBe("/openapi.json")
  })

  it("labels anything else `other`, never the raw path (ids would explode the label set)", () => {
    expect(routeOf("/v1/messages/a/b/c")).toBe("other")
    expect(routeOf("/wp-admin")).toBe("other")
  })
})
