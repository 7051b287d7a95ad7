package s3

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/siltstream/silt/objectstore"
)

// errorCode returns the S3 error code and HTTP status of err, when known.
func errorCode(err error) (code string, status int) {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code = apiErr.ErrorCode()
	}
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) {
		status = respErr.HTTPStatusCode()
	}
	return code, status
}

// classifiedError carries one objectstore sentinel next to the SDK error,
// so that errors.Is finds both and the message can lead with what it means.
type classifiedError struct {
	msg  string
	kind error
	err  error
}

func (e *classifiedError) Error() string   { return e.msg + ": " + e.err.Error() }
func (e *classifiedError) Unwrap() []error { return []error{e.kind, e.err} }

// classify maps an SDK error to the objectstore error classification.
func (b *Bucket) classify(op, key string, err error) error {
	what := op
	if key != "" {
		what += " " + key
	}
	if ctxErr := contextError(err); ctxErr != nil {
		return fmt.Errorf("s3 %s: %w", what, err)
	}
	code, status := errorCode(err)
	switch {
	case code == "NoSuchBucket":
		return b.bucketNotFound(what, err)
	case code == "NoSuchKey" || code == "NotFound" || status == http.StatusNotFound:
		return &classifiedError{fmt.Sprintf("s3 %s: object not found", what), objectstore.ErrNotFound, err}
	case code == "InvalidRange" || status == http.StatusRequestedRangeNotSatisfiable:
		return &classifiedError{fmt.Sprintf("s3 %s: invalid range", what), objectstore.ErrInvalidRange, err}
	case code == "AccessDenied" || code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" ||
		code == "InvalidToken" || code == "ExpiredToken" || code == "Forbidden" || status == http.StatusForbidden:
		return &classifiedError{
			fmt.Sprintf("s3: access denied to bucket %q (check credentials and bucket policy) during %s", b.bucket, what),
			objectstore.ErrAccessDenied, err,
		}
	case code == "PermanentRedirect" || code == "AuthorizationHeaderMalformed" || status == http.StatusMovedPermanently:
		return fmt.Errorf("s3: bucket %q is in another region than the one configured (set region=): %w", b.bucket, err)
	}
	return fmt.Errorf("s3 %s: %w", what, err)
}

func (b *Bucket) bucketNotFound(during string, err error) error {
	return &classifiedError{
		fmt.Sprintf("s3: bucket %q does not exist (during %s)", b.bucket, during),
		objectstore.ErrBucketNotFound, err,
	}
}

func contextError(err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		return context.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return context.DeadlineExceeded
	}
	return nil
}
