// Must NOT compile: a case registered without its affair, on a route that does not exist. The
// test compiles it too and expects tsc to refuse, so that client.ts compiling means something.
import createClient from "openapi-fetch";
import type { components, paths } from "./api";

const api = createClient<paths>({ baseUrl: "http://127.0.0.1:8000" });
const body: components["schemas"]["intake.RegistrationIn"] = { applicant_id: "a", jurisdiction: "320104001" };
export const wrong = [body, api.GET("/api/intake/v1/no-such-route", {})];
