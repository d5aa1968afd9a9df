// A front end's first client of the gateway, written against the types that openapi-typescript
// generates from /api/openapi.json (./api.d.ts, made by the test): if a route, a field or a
// type it relies on changes, this stops compiling. Never run, only compiled (tsc --noEmit).
import createClient from "openapi-fetch";
import type { components, paths } from "./api";

type Receipt = components["schemas"]["intake.ReceiptOut"];
type Registration = components["schemas"]["intake.RegistrationIn"];

const api = createClient<paths>({ baseUrl: "http://127.0.0.1:8000" });

export async function registerAndAccept(token: string, applicantId: string): Promise<Receipt | undefined> {
  const headers = { Authorization: `Bearer ${token}`, "Idempotency-Key": crypto.randomUUID() };
  const body: Registration = {
    applicant_id: applicantId,
    affair_code: "residence.residence_proof",
    jurisdiction: "320104001001",
    channel: "window",
    materials_handed_in: ["id_card", "residence_proof", "purpose_note"],
  };
  const registered = await api.POST("/api/intake/v1/cases", { headers, body });
  if (registered.error !== undefined || registered.data === undefined) return undefined;
  const accepted = await api.POST("/api/intake/v1/cases/{case_id}/accept", {
    headers,
    params: { path: { case_id: registered.data.id } },
  });
  return accepted.data; // the receipt a clerk prints: its case number and due date
}

export async function windowQueue(token: string) {
  const queue = await api.GET("/api/intake/v1/cases", { headers: { Authorization: `Bearer ${token}` } });
  return queue.data;
}

export async function openRequests() {
  // Open311 keeps its public path, with no bearer token
  return (await api.GET("/open311/v2/requests.{ext}", { params: { path: { ext: "json" } } })).response.status;
}
