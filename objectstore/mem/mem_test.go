package mem_test

import (
	"testing"

	"github.com/siltstream/silt/objectstore"
	"github.com/siltstream/silt/objectstore/mem"
	"github.com/siltstream/silt/objectstore/objectstoretest"
)

func TestBucket(t *testing.T) {
	t.Run("mem", func(t *testing.T) {
		objectstoretest.Run(t, func(t *testing.T) objectstore.Bucket { return mem.New() })
	})
}
