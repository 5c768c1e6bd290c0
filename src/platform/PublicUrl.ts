import { Context } from "effect"

/** Where providers reach this gateway's webhooks (`PUBLIC_URL`), without a trailing slash. */
export class PublicUrl extends Context.Tag("sms-gateway/PublicUrl")<PublicUrl, string>() {}

export const deliveryReportUrl = (publicUrl: string, provider: string) =>
  `${publicUrl}/v1/providers/${provider}/delivery-reports`
