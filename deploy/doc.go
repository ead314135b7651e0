// Package deploy holds what operators deploy beside drover: Prometheus
// alert rules (prometheus/) and a Grafana dashboard (grafana/). Its tests
// check them with promtool and against the metrics drover exports.
package deploy
