// Prints `N passed, N failed[, N skipped]` from a vitest JSON report. Exits 1 when anything
// failed or no test ran; a suite that failed to load counts as a failure.
import { readFileSync } from "node:fs"

const path = process.argv[2]
let report
try {
  report = JSON.parse(readFileSync(path, "utf8"))
} catch (error) {
  console.log(`no test report at ${path}: ${error.message}`)
  console.log("0 passed, 1 failed")
  process.exit(1)
}
const passed = report.numPassedTests ?? 0
const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0)
const brokenSuites = (report.testResults ?? []).filter(
  (file) => file.status === "failed" && file.assertionResults.length === 0
).length
const failed = (report.numFailedTests ?? 0) + brokenSuites
for (const file of report.testResults ?? []) {
  for (const test of file.assertionResults ?? []) {
    if (test.status === "skipped" || test.status === "pending") console.log(`skipped: ${test.fullName}`)
  }
}
console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}`)
process.exit(failed > 0 || passed === 0 ? 1 : 0)
