package worker

import (
	"fmt"

	"go.temporal.io/sdk/log"
	"go.uber.org/zap"
)

// SDKLogger adapts zap to the SDK's logger, so the SDK's own messages and
// workflow.GetLogger land in the same stream with structured fields.
type SDKLogger struct{ z *zap.SugaredLogger }

var _ log.Logger = (*SDKLogger)(nil)
var _ log.WithLogger = (*SDKLogger)(nil)

// NewSDKLogger wraps a zap logger for the Temporal SDK.
func NewSDKLogger(z *zap.Logger) *SDKLogger {
	return &SDKLogger{z: z.WithOptions(zap.AddCallerSkip(1)).Sugar()}
}

func (l *SDKLogger) Debug(msg string, keyvals ...interface{}) { l.z.Debugw(msg, fix(keyvals)...) }
func (l *SDKLogger) Info(msg string, keyvals ...interface{})  { l.z.Infow(msg, fix(keyvals)...) }
func (l *SDKLogger) Warn(msg string, keyvals ...interface{})  { l.z.Warnw(msg, fix(keyvals)...) }
func (l *SDKLogger) Error(msg string, keyvals ...interface{}) { l.z.Errorw(msg, fix(keyvals)...) }

// With returns a logger with fields added to every message.
func (l *SDKLogger) With(keyvals ...interface{}) log.Logger {
	return &SDKLogger{z: l.z.With(fix(keyvals)...)}
}

// fix makes sure keys are strings: the SDK passes key/value pairs, and zap's
// sugared logger reports an odd or non-string key as a DPANIC.
func fix(kv []interface{}) []interface{} {
	out := make([]interface{}, 0, len(kv)+1)
	for i := 0; i < len(kv); i += 2 {
		key, ok := kv[i].(string)
		if !ok {
			key = fmt.Sprint(kv[i])
		}
		if i+1 < len(kv) {
			out = append(out, key, kv[i+1])
		} else {
			out = append(out, "extra", kv[i])
		}
	}
	return out
}
