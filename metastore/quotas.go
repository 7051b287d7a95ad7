package metastore

import "context"

// QuotaStore keeps Kafka client quotas (AlterClientQuotas,
// DescribeClientQuotas). Agents read them all and resolve in memory; a
// store with a CommitWatcher reports every change
// (CommitHandler.QuotasChanged).
type QuotaStore interface {
	// ClientQuotas lists every entity that has at least one quota, with
	// its values, ordered by entity (user, then client id, then ip; per
	// type absent before default before named, names in byte order).
	ClientQuotas(ctx context.Context) ([]ClientQuota, error)
	// AlterClientQuotas applies the alterations in one transaction: each
	// sets its Set keys and deletes its Remove keys (a key not stored is
	// not an error). An entity left without keys is gone. Callers
	// validate: entities and keys are stored as given.
	AlterClientQuotas(ctx context.Context, alts []QuotaAlteration) error
}

// QuotaNameKind says whether a quota entity has a type, and how it names
// it.
type QuotaNameKind int8

const (
	QuotaAbsent  QuotaNameKind = 0 // the entity does not have this type
	QuotaDefault QuotaNameKind = 1 // the default: every name without its own entry (Kafka's null name)
	QuotaNamed   QuotaNameKind = 2 // one name
)

// QuotaName is one component of a quota entity.
type QuotaName struct {
	Kind QuotaNameKind
	Name string // only when Kind is QuotaNamed
}

// Named and DefaultName build QuotaNames.
func Named(name string) QuotaName { return QuotaName{Kind: QuotaNamed, Name: name} }

// DefaultName is the default entity of a type.
func DefaultName() QuotaName { return QuotaName{Kind: QuotaDefault} }

// QuotaEntity is who a quota applies to, as Kafka's ClientQuotaEntity:
// a user, a client id, both, or an IP. It is comparable, a map key.
type QuotaEntity struct {
	User     QuotaName
	ClientID QuotaName
	IP       QuotaName
}

// ClientQuota is one entity's quota values, by Kafka quota key
// (producer_byte_rate, consumer_byte_rate, ...).
type ClientQuota struct {
	Entity QuotaEntity
	Values map[string]float64
}

// QuotaAlteration changes one entity's quotas.
type QuotaAlteration struct {
	Entity QuotaEntity
	Set    map[string]float64
	Remove []string
}
