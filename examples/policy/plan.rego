# An example policy over `reconciler plan --json` (docs/plan-json.md), for OPA / conftest:
#
#   reconciler plan manifest.yaml --json > plan.json
#   conftest test --parser json --policy examples/policy plan.json
#
# It reads only fields schemas/plan.schema.json guarantees: the actions (op, kind, id) and the
# whole desired state (every model's configuration).
package main

import rego.v1

# Production apps (their id ends in "-prod") never lose a workflow through CI.
deny contains msg if {
	endswith(input.app.id, "-prod")
	some action in input.actions
	action.op == "delete"
	action.kind == "workflow"
	msg := sprintf("plan deletes workflow %s from production app %s: remove it by hand after review", [action.id, input.app.id])
}

# A thresholder that writes trusted annotations must not pass predictions below 0.5.
deny contains msg if {
	some model in input.desired.models
	model.type == "concept-thresholder"
	model.config.comparator in {"GREATER_THAN", "GREATER_THAN_OR_EQUAL"}
	some concept, threshold in model.config.thresholds
	threshold < 0.5
	msg := sprintf("model %s: threshold %v for concept %s is below 0.5", [model.id, threshold, concept])
}

# Say so when a plan creates a model (a reviewer may want to look twice).
warn contains msg if {
	some action in input.actions
	action.op == "create"
	action.kind == "model"
	msg := sprintf("plan creates model %s (%s)", [action.id, action.desired.type])
}
