import assert from "node:assert/strict";
import { test } from "node:test";
import { buildHpa } from "../../src/resources/hpa.js";
import { makeCluster } from "../support/fixtures.js";

test("HPA behavior defaults suit connection surges: scale up at once and fast, down after 10 min, a pod a minute", () => {
  const hpa = buildHpa(makeCluster({ autoscaling: { enabled: true } }));
  assert.deepEqual(hpa?.spec?.behavior, {
    scaleUp: {
      stabilizationWindowSeconds: 0,
      selectPolicy: "Max",
      policies: [
        { type: "Percent", value: 100, periodSeconds: 15 },
        { type: "Pods", value: 4, periodSeconds: 15 },
      ],
    },
    scaleDown: {
      stabilizationWindowSeconds: 600,
      selectPolicy: "Max",
      policies: [{ type: "Pods", value: 1, periodSeconds: 60 }],
    },
  });
});

test("HPA behavior from the spec: windows, policies and selectPolicy as given", () => {
  const hpa = buildHpa(
    makeCluster({
      autoscaling: {
        enabled: true,
        behavior: {
          scaleUp: {
            stabilizationWindowSeconds: 30,
            policies: [{ type: "Pods", value: 10, periodSeconds: 30 }],
          },
          scaleDown: { selectPolicy: "Disabled" },
        },
      },
    }),
  );
  assert.deepEqual(hpa?.spec?.behavior?.scaleUp, {
    stabilizationWindowSeconds: 30,
    selectPolicy: "Max",
    policies: [{ type: "Pods", value: 10, periodSeconds: 30 }],
  });
  assert.equal(hpa?.spec?.behavior?.scaleDown?.selectPolicy, "Disabled");
  assert.equal(hpa?.spec?.behavior?.scaleDown?.stabilizationWindowSeconds, 600);
});
