/** A claimed row becomes a `SendSms`, or a refusal naming the row's own column: pure. */
import { describe, expect, it } from "@effect/vitest"
import { messageIdFor } from "../../src/domain/Ids.js"
import { defaultLimits } from "../../src/domain/SendSms.js"
import { decodeMapping, defaultMapping, type Mapping } from "../../src/outbox/Mapping.js"
import {
  columnOfField,
  idempotencyKeyFor,
  type OutboxRow,
  planRow,
  type RowPlan,
  rejectionText,
  rowKeyOf
} from "../../src/outbox/RowCommand.js"

const mapping = defaultMapping()
const row = (key: string, values: OutboxRow["values"]): OutboxRow => ({ key, values })
const plan = (values: OutboxRow["values"], m: Mapping = mapping, key = "42") =>
  planRow(row(key, values), m, defaultLimits)
const refusal = (p: RowPlan) => (p._tag === "Reject" ? `${p.column}: ${p.reason}` : `sent ${p.command.to}`)

describe("row -> SendSms", () => {
  it("a row's idempotency key is its table and primary key, so its message id never changes", () => {
    const first = plan({ clientId: "shop", to: "+447911123456", body: "hi" })
    const again = plan({ clientId: "shop", to: "+447911123456", body: "hi" })
    expect(first._tag).toBe("Send")
    if (first._tag !== "Send" || again._tag !== "Send") return
    expect(first.command.idempotencyKey).toBe("outbox:sms_outbox:42")
    expect(first.messageId).toBe(messageIdFor("shop", "outbox:sms_outbox:42"))
    expect(again.messageId).toBe(first.messageId)
    expect(plan({ clientId: "shop", to: "+447911123456", body: "hi" }, mapping, "43")).not.toMatchObject({
      messageId: first.messageId
    })
    expect(JSON.parse(first.payload)).toEqual({
      clientId: "shop",
      idempotencyKey: "outbox:sms_outbox:42",
      to: "+447911123456",
      body: "hi"
    })
  })

  it("reads every optional column, whatever form the driver gives it", () => {
    const jsonColumns = plan({
      clientId: "shop",
      to: "+447911123456",
      body: "hi",
      from: "Shop",
      providers: ["sim", "backup"],
      metadata: { order: "42" },
      validUntil: new Date("2030-01-01T00:00:00Z")
    })
    const textColumns = plan({
      clientId: "shop",
      to: "+447911123456",
      body: "hi",
      from: "Shop",
      providers: "sim, backup",
      metadata: '{"order":"42"}',
      validUntil: "2030-01-01T00:00:00Z"
    })
    for (const p of [jsonColumns, textColumns]) {
      expect(p._tag).toBe("Send")
      if (p._tag !== "Send") continue
      expect(p.command).toMatchObject({
        from: "Shop",
        providers: ["sim", "backup"],
        metadata: { order: "42" },
        validUntil: new Date("2030-01-01T00:00:00Z")
      })
    }
    const jsonText = plan({ to: "+447911123456", body: "hi", providers: '["sim"]' })
    expect(jsonText).toMatchObject({ _tag: "Send", command: { providers: ["sim"] } })
  })

  it("blank and null columns are absent; no client id means the mapping's default", () => {
    const p = plan({
      clientId: null,
      to: "+447911123456",
      body: "hi",
      from: "",
      providers: " ",
      metadata: null
    })
    expect(p).toMatchObject({ _tag: "Send", command: { clientId: "outbox" } })
    if (p._tag === "Send") expect(JSON.parse(p.payload)).not.toHaveProperty("from")
  })

  it("refuses bad rows naming the row's column and the reason, as the NATS intake would", () => {
    expect(refusal(plan({ to: null, body: "hi" }))).toBe("recipient: is missing")
    expect(refusal(plan({ to: "", body: "hi" }))).toBe("recipient: is missing")
    expect(refusal(plan({ to: "07911 123456", body: "hi" }))).toBe(
      "recipient: must be E.164: '+' then 7 to 15 digits, no spaces"
    )
    expect(refusal(plan({ to: "+4479000123456", body: "hi" }))).toBe(
      "recipient: is not a valid phone number for any numbering plan"
    )
    expect(refusal(plan({ to: "+447911123456", body: "x".repeat(1531) }))).toBe(
      "body: is longer than 10 segments can hold (1530 GSM-7 characters, 670 UCS-2)"
    )
    expect(refusal(plan({ to: "+447911123456", body: null }))).toBe("body: is missing")
    expect(refusal(plan({ to: "+447911123456", body: "hi", providers: ["ok", "Not OK"] }))).toBe(
      "providers.1: provider ids are 1-32 of a-z, 0-9, '_' and '-'"
    )
    expect(refusal(plan({ to: "+447911123456", body: "hi", providers: "[oops" }))).toBe(
      "providers: is not a valid JSON array"
    )
    expect(refusal(plan({ to: "+447911123456", body: "hi", metadata: "[1]" }))).toBe(
      "metadata: must be a JSON object"
    )
    expect(refusal(plan({ to: "+447911123456", body: "hi", validUntil: new Date("nonsense") }))).toBe(
      "valid_until: is not a valid time"
    )
    expect(refusal(plan({ clientId: "no spaces please", to: "+447911123456", body: "hi" }))).toBe(
      "client_id: may hold only letters, digits, '.', '_' and '-'"
    )
  })

  it("the body limit is the configured one (MAX_SEGMENTS)", () => {
    const body = "x".repeat(200)
    expect(planRow(row("1", { to: "+447911123456", body }), mapping, { maxSegments: 1 })._tag).toBe("Reject")
    expect(planRow(row("1", { to: "+447911123456", body }), mapping, { maxSegments: 2 })._tag).toBe("Send")
  })

  it("with a mapping, refusals name the application's columns", () => {
    const legacy = decodeMapping(
      {
        table: "legacy",
        columns: {
          id: "sms_id",
          to: "phone",
          body: "txt",
          status: "state",
          messageId: "gw",
          lastEventPosition: "pos"
        },
        defaultClientId: "billing"
      },
      "test"
    )
    expect(legacy._tag).toBe("Right")
    if (legacy._tag !== "Right") return
    expect(refusal(plan({ to: "12", body: "hi" }, legacy.right))).toBe(
      "phone: must be E.164: '+' then 7 to 15 digits, no spaces"
    )
    expect(plan({ to: "+447911123456", body: "hi" }, legacy.right, "7")).toMatchObject({
      _tag: "Send",
      command: { clientId: "billing", idempotencyKey: "outbox:legacy:7" }
    })
    // a field without a column of its own still names something the operator can find
    expect(columnOfField(legacy.right, "clientId")).toBe("defaultClientId")
    expect(columnOfField(legacy.right, "metadata.x")).toBe("metadata.x")
  })

  it("an outbox message's key leads back to its row, and no other key does", () => {
    expect(rowKeyOf("sms_outbox", idempotencyKeyFor("sms_outbox", "42"))).toBe("42")
    expect(rowKeyOf("sms_outbox", idempotencyKeyFor("sms_outbox", "a:b"))).toBe("a:b")
    expect(rowKeyOf("sms_outbox", idempotencyKeyFor("other", "42"))).toBeUndefined()
    expect(rowKeyOf("sms_outbox", "order-42")).toBeUndefined()
  })

  it("a rejection's text fits a narrow error column", () => {
    expect(rejectionText("body", "x".repeat(1000))).toHaveLength(500)
  })
})
