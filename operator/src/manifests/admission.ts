/**
 * The ValidatingAdmissionPolicy that narrows what a chat-node's credentials can do to pods (pure).
 *
 * The chat-node Role must grant `patch` on pods for the connection annotation, and RBAC cannot narrow
 * that to the caller's own pod. This policy does, for every request made as a chat-node ServiceAccount
 * (`system:serviceaccount:<namespace>:<cluster>-chat-node`, the names the operator gives them): the pod
 * must be the one the caller's token is bound to (`authentication.kubernetes.io/pod-name`, present in
 * the tokens the kubelet mounts into pods), and the update may change the annotation
 * `vibetalk.io/connections` (a decimal count) and `vibetalk.io/readiness` (its failing readiness checks)
 * alone — no label, no other annotation, no finalizer,
 * owner reference or spec field. One static policy for the whole cluster, installed with the operator
 * (docs/decisions.md, decision 21).
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import { READINESS_CHECKS } from "@vibetalk/protocol/cluster";
import {
  ANNOTATION_CONNECTIONS,
  ANNOTATION_POD_DELETION_COST,
  ANNOTATION_READINESS,
} from "../resources/meta.js";

/** The annotations a chat-node may write on its own pod, each with its value validated below. */
export const CHAT_NODE_POD_ANNOTATIONS = [
  ANNOTATION_CONNECTIONS,
  ANNOTATION_READINESS,
  ANNOTATION_POD_DELETION_COST,
] as const;
const allowedNames = `${CHAT_NODE_POD_ANNOTATIONS.slice(0, -1).join(", ")} and ${ANNOTATION_POD_DELETION_COST}`;
const check = `(${READINESS_CHECKS.join("|")})`;

export const CHAT_NODE_POD_POLICY = "vibetalk-chat-node-pods";
/** The extra the API server puts into the user info of a pod-bound ServiceAccount token. */
export const POD_NAME_EXTRA = "authentication.kubernetes.io/pod-name";
/** The suffix of every chat-node ServiceAccount (ownedNames().serviceAccount). */
export const CHAT_NODE_SA_SUFFIX = "-chat-node";

const orEmpty = (field: string, empty: "{}" | "[]") =>
  `(has(object.metadata.${field}) ? object.metadata.${field} : ${empty}) == ` +
  `(has(oldObject.metadata.${field}) ? oldObject.metadata.${field} : ${empty})`;

export function chatNodePodPolicySpec(): Record<string, unknown> {
  const a = `'${ANNOTATION_CONNECTIONS}'`;
  const r = `'${ANNOTATION_READINESS}'`;
  const c = `'${ANNOTATION_POD_DELETION_COST}'`;
  return {
    failurePolicy: "Fail",
    matchConstraints: {
      resourceRules: [{ apiGroups: [""], apiVersions: ["v1"], operations: ["UPDATE"], resources: ["pods"] }],
    },
    matchConditions: [
      {
        name: "chat-node-service-account",
        expression:
          "request.userInfo.username.startsWith('system:serviceaccount:') && " +
          `request.userInfo.username.endsWith('${CHAT_NODE_SA_SUFFIX}')`,
      },
    ],
    variables: [
      {
        name: "podName",
        expression:
          `has(request.userInfo.extra) && '${POD_NAME_EXTRA}' in request.userInfo.extra ? ` +
          `request.userInfo.extra['${POD_NAME_EXTRA}'][0] : ''`,
      },
      {
        name: "annotations",
        expression: "has(object.metadata.annotations) ? object.metadata.annotations : {}",
      },
      {
        name: "oldAnnotations",
        expression: "has(oldObject.metadata.annotations) ? oldObject.metadata.annotations : {}",
      },
      { name: "writable", expression: `[${CHAT_NODE_POD_ANNOTATIONS.map((n) => `'${n}'`).join(", ")}]` },
    ],
    validations: [
      {
        expression: "variables.podName != '' && object.metadata.name == variables.podName",
        messageExpression:
          "variables.podName == '' ? 'a chat-node may patch pods only with the token of its own pod' : " +
          "'a chat-node may patch only its own pod ' + variables.podName + ', not ' + object.metadata.name",
        reason: "Forbidden",
      },
      {
        expression:
          "variables.annotations.all(k, k in variables.writable || (k in variables.oldAnnotations && " +
          "variables.oldAnnotations[k] == variables.annotations[k])) && " +
          "variables.oldAnnotations.all(k, k in variables.writable || k in variables.annotations)",
        message: `a chat-node may change no annotation of its pod but ${allowedNames}`,
        reason: "Forbidden",
      },
      {
        expression: `!(${a} in variables.annotations) || variables.annotations[${a}].matches('^[0-9]{1,10}$')`,
        message: `${ANNOTATION_CONNECTIONS} must be a decimal count`,
        reason: "Invalid",
      },
      {
        expression:
          `!(${r} in variables.annotations) || (variables.annotations[${r}].size() <= 64 && ` +
          `variables.annotations[${r}].matches('^(${check}(,${check})*)?$'))`,
        message: `${ANNOTATION_READINESS} must list failing checks, comma-separated: ${READINESS_CHECKS.join(", ")}`,
        reason: "Invalid",
      },
      {
        expression: `!(${c} in variables.annotations) || variables.annotations[${c}].matches('^[0-9]{1,9}$')`,
        message: `${ANNOTATION_POD_DELETION_COST} must be a connection count (0 to 999999999)`,
        reason: "Invalid",
      },
      {
        expression: [
          orEmpty("labels", "{}"),
          orEmpty("finalizers", "[]"),
          orEmpty("ownerReferences", "[]"),
          "object.spec == oldObject.spec",
        ].join(" && "),
        message: `a chat-node may change nothing of its pod but the annotations ${allowedNames}`,
        reason: "Forbidden",
      },
    ],
  };
}

/** The policy and its binding (cluster-scoped; `name` lets the chart prefix its release). */
export function chatNodePodPolicy(
  name: string = CHAT_NODE_POD_POLICY,
  labels: Record<string, string> = {},
): KubernetesObject[] {
  return [
    {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingAdmissionPolicy",
      metadata: { name, labels },
      spec: chatNodePodPolicySpec(),
    } as KubernetesObject,
    {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingAdmissionPolicyBinding",
      metadata: { name, labels },
      spec: { policyName: name, validationActions: ["Deny"] },
    } as KubernetesObject,
  ];
}
