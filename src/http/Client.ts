/**
 * The typed API client with a key, for the CLI (`status`, `history`) and other tools. The key comes
 * from `GATEWAY_API_KEY`, else the embedded gateway's `<dataDir>/admin.key`.
 */
import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { HttpApiClient, HttpClient, HttpClientRequest } from "@effect/platform"
import { ADMIN_KEY_FILE } from "../clients/Bootstrap.js"
import { GatewayApi } from "./Api.js"

export const apiKeyFor = (dataDir: string): string | undefined => {
  if (process.env.GATEWAY_API_KEY) return process.env.GATEWAY_API_KEY
  const file = join(dataDir, ADMIN_KEY_FILE)
  return existsSync(file) ? readFileSync(file, "utf8").trim() : undefined
}

export const makeApiClient = (baseUrl: string, apiKey: string | undefined) =>
  HttpApiClient.make(GatewayApi, {
    baseUrl,
    transformClient: HttpClient.mapRequest((request) =>
      apiKey === undefined ? request : HttpClientRequest.setHeader(request, "x-api-key", apiKey)
    )
  })
