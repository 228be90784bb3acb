// Evaluates IAM requests against identity policies with
// @cloud-copilot/iam-simulate, offline. Used by tests/infra/test_ci_role.py.
//
// stdin:  {"principal": ARN, "account": ID,
//          "policies": [policy JSON, ...],
//          "requests": [{"action": "dynamodb:UpdateItem", "resource": ARN,
//                        "context": {"dynamodb:LeadingKeys": [...], ...}}, ...]}
// stdout: [{"result": "Allowed" | "ImplicitlyDenied" | "ExplicitlyDenied"}
//          or {"error": ...}, ...] in the order of the requests.
// The simulator validates actions, resource types and context keys: a
// request it refuses comes back as an error, never as a decision.
import { runSimulation } from '@cloud-copilot/iam-simulate'

let input = ''
for await (const chunk of process.stdin) input += chunk
const { principal, account, policies, requests } = JSON.parse(input)

const out = []
for (const request of requests) {
  const response = await runSimulation(
    {
      identityPolicies: policies.map((policy, i) => ({ name: `policy${i}`, policy })),
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      request: {
        action: request.action,
        principal,
        resource: { accountId: account, resource: request.resource },
        contextVariables: request.context ?? {}
      }
    },
    {}
  )
  if (response.resultType === 'error') {
    out.push({ error: response.errors })
  } else if (response.resultType === 'single') {
    out.push({ result: response.overallResult })
  } else {
    out.push({ error: `unexpected result type ${response.resultType}` })
  }
}
process.stdout.write(JSON.stringify(out) + '\n')
