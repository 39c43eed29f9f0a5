//go:build tools

// Package tools pins the etcd server the test harness runs.
package tools

import _ "go.etcd.io/etcd/server/v3"
