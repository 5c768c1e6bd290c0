/** The sign-in form: one field, an API key of scope `admin` or `auditor`. */
import { html } from "./Html.js"
import { bare, notice } from "./Layout.js"

export const loginPage = (csrf: string, problem?: string) =>
  bare(
    "Sign in",
    html`<form class="login" method="post" action="/console/login">
  <h1>SMS gateway console</h1>
  ${problem ? notice("error", problem) : ""}
  <input type="hidden" name="_csrf" value="${csrf}">
  <label for="apiKey">API key (scope admin or auditor)</label>
  <input id="apiKey" name="apiKey" type="password" autocomplete="off" required autofocus>
  <button type="submit">Sign in</button>
  <p class="muted small">Issue one with <code>sms-gateway clients add &lt;id&gt; --scope auditor</code>.</p>
</form>`
  )
