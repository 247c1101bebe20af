package router

import (
	"errors"
	"flag"
	"time"

	"github.com/liveim/liveim/callback"
	"github.com/liveim/liveim/internal/flagvalue"
)

// Config configures a Router. The zero value means the defaults; they are
// applied in one place, WithDefaults. Every router of a cluster must use
// the same Partitions.
type Config struct {
	// ID names this router among the live routers. Default: random.
	ID string
	// Partitions is how many partitions groups are hashed onto; each is
	// owned by one router at a time. Default 32.
	Partitions int
	// Workers is how many requests are processed at once. Requests of one
	// group always go to the same worker, so they keep their order.
	// Default 32.
	Workers int
	// MaxBacklog bounds the group requests waiting for one worker; past it
	// new ones are shed with 503 (the client retries). The consumers never
	// wait for a worker, so a busy router keeps its partitions. Default
	// 10000.
	MaxBacklog int
	// StreamReplicas is the replica count of liveim's JetStream streams and
	// buckets: 1 on a single NATS server, 3 on a cluster. Default 1.
	StreamReplicas int
	// PinnedTTL is how long a partition stays pinned to a router that
	// stopped pulling before another router gets it. It is long so a busy
	// router keeps its partitions; failover does not wait for it (routers
	// unpin what they hand over or take from a dead router). Default 30s.
	PinnedTTL time.Duration
	// AliveTTL is how long a router stays in the live set after its last
	// announcement; partitions move when it expires. Default 5s.
	AliveTTL time.Duration
	// HighMaxAge is how long HIGH messages stay replayable. Default 24h.
	HighMaxAge time.Duration
	// GroupIdle is how long a group without members stays in a router's
	// memory after its last request. Default 5m.
	GroupIdle time.Duration
	// HighMaxBytes bounds the HIGH stream, all apps together; past it the
	// oldest HIGH messages leave it before their age (they can no longer
	// be resumed), so no app's HIGH flood fills the NATS disks every
	// stream shares. Default 8 GiB.
	HighMaxBytes int64
	// RPCMaxBytes bounds the requests waiting in the RPC stream (memory);
	// past it new ones are refused, and their senders get 503 when the
	// gateway's wait ends. Default 256 MiB.
	RPCMaxBytes int64
	// C2CTimeout bounds the wait for the receiver's gateway to take a C2C
	// message. Default 3s.
	C2CTimeout time.Duration
	// MaxDataBytes is the largest message data, in bytes (413 above it).
	// Default 15 KiB.
	MaxDataBytes int
	// MaxGroupNameBytes is the longest groupName. Default 128.
	MaxGroupNameBytes int
	// MaxGroupMetaBytes is the largest groupMeta (413 above it).
	// Default 32 KiB.
	MaxGroupMetaBytes int
	// MaxAdmins is the most admins a group may have. Default 3.
	MaxAdmins int
	// MaxGroups is the most groups an app may have unless the app sets its
	// own (443). Default 10000.
	MaxGroups int
	// MaxBans is the most users banned from one group at once (a kick
	// with a ban past it is 443; ended bans are dropped first). Default
	// 10000.
	MaxBans int
	// RecentPageSize is listRecentMessage's default and largest page.
	// Default 50.
	RecentPageSize int
	// RecentUsers is how many users listRecentGroupUser returns.
	// Default 50.
	RecentUsers int
	// RoomRate is how many NORMAL messages per second a group accepts;
	// more are shed with 412. HIGH messages are never shed. Default 500.
	RoomRate float64
	// MemberGrace is how long a member whose connection went away stays
	// in the group, waiting for a reconnect. Default 10s.
	MemberGrace time.Duration
	// GatewayTimeout is how long a gateway may stay silent before its
	// sessions count as disconnected. Default 10s.
	GatewayTimeout time.Duration
	// MemberChangeInterval is the least time between two memberchange
	// events of a group. Default 1s.
	MemberChangeInterval time.Duration
	// MemberChangeFanout bounds what one group's memberchange events cost
	// its gateways: a group of more members than this gets them less
	// often, every members/MemberChangeFanout seconds, so it costs about
	// MemberChangeFanout deliveries a second (a 100,000-viewer room that
	// fills up would otherwise send every viewer an event every second).
	// Default 200: a room of 1,000 gets it every 5 s, of 2,000 or more
	// every MemberChangeMaxInterval.
	MemberChangeFanout int
	// MemberChangeMaxInterval caps the interval MemberChangeFanout
	// stretches. Default 10s.
	MemberChangeMaxInterval time.Duration
	// MemberChangeUsers caps the join and leave lists of one memberchange
	// event; the counts stay exact. Default 20.
	MemberChangeUsers int
	// MaxRepeatCount is the largest repeatCount of one send (400 above
	// it). Default 1000.
	MaxRepeatCount int32
	// RecallWindow is how long a sender may delete its own message.
	// Default 2m.
	RecallWindow time.Duration
	// NonceWindow is how long a login nonce stays bound to the first token
	// that used it, the max age of NonceStream: within it no other token
	// may use the nonce. Every router of a cluster should have the same.
	// Default 1h.
	NonceWindow time.Duration
	// NonceMaxBindings caps the bindings NonceStream holds, ~350 B of the
	// NATS server's memory each: past it a login with a nonce not yet
	// bound goes through unbound (counted, and logged at most every 10 s)
	// rather than the stream taking the memory JetStream's other streams
	// need. Default 1,000,000.
	NonceMaxBindings int
	// DedupeWindow is how long after a router loads a group it looks up,
	// in the store, sends with a client message ID it does not remember
	// (a retry after a failover). Default 2m.
	DedupeWindow time.Duration
	// EventWait is how long a send waits for its group.message callback
	// event to be stored (an app that asked for such events) before it is
	// answered 503 (a send with a client message ID) or anyway. Default 2s.
	EventWait time.Duration
	// AuthTimeout bounds the check of one login's credentials (the app
	// lookup and the nonce binding). Default 5s.
	AuthTimeout time.Duration
	// AuditTimeout bounds a call to an app's audit hook. Default 1s.
	AuditTimeout time.Duration
	// AuditsPerApp bounds one app's audit-hook calls in flight in a
	// router; past it the app's sends are 503 (retry). An app whose hook
	// is slow then waits on its own sends, not on the router's shared
	// slots and workers, which other apps' sends need. Default 256 (of
	// the router's 4,096 slots).
	AuditsPerApp int
	// ResumeBatch is the most HIGH messages one resume reply carries.
	// Default 1000.
	ResumeBatch int
	// HighStreams is how many JetStream streams a cluster's HIGH messages
	// are spread over, a group's all in one (subject.HighShard): with one,
	// its write loop, an fsync per message on a single node, bounded
	// every group's HIGH sends together. Every router of a cluster must
	// have the same. Default 8.
	HighStreams int
	// ResumeMemory is how much memory a router gives its groups' recent
	// HIGH messages, so that a resume after a short absence reads memory
	// instead of the HIGH stream, split evenly over its workers; each
	// worker's oldest go first. Default 64 MiB.
	ResumeMemory int64
	// ResumeReadRate bounds the HIGH stream gets one app's resumes make
	// in a router, a second (bursts of as many): a resume from before
	// the messages in memory reads the stream one get per message, and a
	// member resuming a busy group from its start over and over would
	// otherwise keep a router and NATS busy for every app. Past it a
	// resume ends its page early, or is 412 with nothing read. Default
	// 20,000.
	ResumeReadRate float64
	// FlushInterval is how often changed member lists, and statistics
	// (at most every StatsInterval), are written to storage. Default 1s.
	FlushInterval time.Duration
	// StatsInterval is the least time between two writes of a group
	// record whose only changes are its statistics (PV, message counts):
	// on ScyllaDB each write is a lightweight transaction, the costliest
	// write a router makes per busy group (docs/benchmarks.md). A router
	// killed with kill -9 loses up to this much of its groups'
	// statistics; hand-overs and shutdowns lose none. Default
	// FlushInterval.
	StatsInterval time.Duration
	// SeqBlock is how many seqnums a router reserves per group state write,
	// so a restart never reuses one. Default 1000.
	SeqBlock int64
	// Callbacks configures the delivery of the apps' callback events
	// (package callback); its stream replicas follow the router's.
	Callbacks callback.Config
}

// RegisterFlags registers the router flags on fs with the given prefix.
func (c *Config) RegisterFlags(fs *flag.FlagSet, prefix string) {
	fs.StringVar(&c.ID, prefix+"id", "", "router: unique ID among routers (default random)")
	fs.IntVar(&c.Partitions, prefix+"partitions", 0, "router: group partitions, the same on every router (default 32)")
	fs.IntVar(&c.Workers, prefix+"workers", 0, "router: concurrent request workers (default 32)")
	fs.IntVar(&c.MaxBacklog, prefix+"max-backlog", 0, "router: group requests waiting per worker before 503 (default 10000)")
	fs.IntVar(&c.StreamReplicas, prefix+"stream-replicas", 0, "router: JetStream replicas, 3 on a NATS cluster (default 1)")
	fs.DurationVar(&c.PinnedTTL, prefix+"pinned-ttl", 0, "router: how long a partition stays pinned to a router that stopped pulling; failover does not wait for it (default 30s)")
	fs.DurationVar(&c.AliveTTL, prefix+"alive-ttl", 0, "router: how long a router stays in the live set after its last announcement (default 5s)")
	fs.DurationVar(&c.HighMaxAge, prefix+"high-max-age", 0, "router: how long HIGH messages stay replayable (default 24h)")
	fs.DurationVar(&c.GroupIdle, prefix+"group-idle", 0, "router: how long a group without members stays in memory after its last request (default 5m)")
	fs.Int64Var(&c.HighMaxBytes, prefix+"high-max-bytes", 0, "router: most bytes of HIGH messages kept for resumes, all apps together; the oldest go first (default 8 GiB)")
	fs.Int64Var(&c.RPCMaxBytes, prefix+"rpc-max-bytes", 0, "router: most bytes of requests waiting for their router; past it new ones are refused (default 256 MiB)")
	fs.DurationVar(&c.C2CTimeout, prefix+"c2c-timeout", 0, "router: wait for a C2C receiver's gateway (default 3s)")
	fs.IntVar(&c.MaxDataBytes, prefix+"max-data-bytes", 0, "router: largest message data in bytes (default 15360)")
	fs.IntVar(&c.MaxGroupNameBytes, prefix+"max-group-name-bytes", 0, "router: longest groupName in bytes (default 128)")
	fs.IntVar(&c.MaxGroupMetaBytes, prefix+"max-group-meta-bytes", 0, "router: largest groupMeta in bytes (default 32768)")
	fs.IntVar(&c.MaxAdmins, prefix+"max-admins", 0, "router: most admins of a group (default 3)")
	fs.IntVar(&c.MaxGroups, prefix+"max-groups", 0, "router: groups per app (default 10000)")
	fs.IntVar(&c.MaxBans, prefix+"max-bans", 0, "router: users banned from one group at once (default 10000)")
	fs.IntVar(&c.RecentPageSize, prefix+"recent-page-size", 0, "router: listRecentMessage's page (default 50)")
	fs.IntVar(&c.RecentUsers, prefix+"recent-users", 0, "router: users listRecentGroupUser returns (default 50)")
	fs.Float64Var(&c.RoomRate, prefix+"room-rate", 0, "router: NORMAL messages per second per group before shedding (default 500)")
	fs.DurationVar(&c.MemberGrace, prefix+"member-grace", 0, "router: how long a disconnected member stays (default 10s)")
	fs.DurationVar(&c.GatewayTimeout, prefix+"gateway-timeout", 0, "router: how long a gateway may stay silent before its sessions count as disconnected (default 10s)")
	fs.DurationVar(&c.MemberChangeInterval, prefix+"memberchange-interval", 0, "router: least time between memberchange events of a group (default 1s)")
	fs.IntVar(&c.MemberChangeFanout, prefix+"memberchange-fanout", 0, "router: memberchange deliveries per second a group may cost; bigger groups get memberchange less often (default 200)")
	fs.DurationVar(&c.MemberChangeMaxInterval, prefix+"memberchange-max-interval", 0, "router: most time between memberchange events of a big group (default 10s)")
	fs.IntVar(&c.MemberChangeUsers, prefix+"memberchange-users", 0, "router: users listed per memberchange event; counts stay exact (default 20)")
	fs.Var(flagvalue.Int32(&c.MaxRepeatCount), prefix+"max-repeat-count", "router: largest repeatCount of one send (default 1000)")
	fs.DurationVar(&c.RecallWindow, prefix+"recall-window", 0, "router: how long a sender may delete its own message (default 2m)")
	fs.DurationVar(&c.NonceWindow, prefix+"nonce-window", 0, "router: how long a login nonce stays bound to its first token (default 1h)")
	fs.IntVar(&c.NonceMaxBindings, prefix+"nonce-max-bindings", 0, "router: most login nonces bound at once, ~350 B of NATS memory each (single node); past it new nonces go unbound (default 1000000)")
	fs.DurationVar(&c.DedupeWindow, prefix+"dedupe-window", 0, "router: how long after loading a group a repeated client message ID is looked up in the store (default 2m)")
	fs.DurationVar(&c.EventWait, prefix+"event-wait", 0, "router: how long a send waits for its message's callback event to be stored before it is answered 503 (default 2s)")
	fs.DurationVar(&c.AuthTimeout, prefix+"auth-timeout", 0, "router: bound on checking one login's credentials (default 5s)")
	fs.DurationVar(&c.AuditTimeout, prefix+"audit-timeout", 0, "router: bound on a call to an app's audit hook (default 1s)")
	fs.IntVar(&c.AuditsPerApp, prefix+"audits-per-app", 0, "router: most calls to one app's audit hook in flight; past it the app's sends are 503 (default 256)")
	fs.IntVar(&c.ResumeBatch, prefix+"resume-batch", 0, "router: most HIGH messages in one resume reply (default 1000)")
	fs.IntVar(&c.HighStreams, prefix+"high-streams", 0, "router: JetStream streams the HIGH messages are spread over; the same on every router (default 8)")
	fs.Int64Var(&c.ResumeMemory, prefix+"resume-memory", 0, "router: bytes of recent HIGH messages kept in memory for resumes (default 64 MiB)")
	fs.Float64Var(&c.ResumeReadRate, prefix+"resume-read-rate", 0, "router: HIGH stream gets per second one app's resumes may make (default 20000)")
	fs.DurationVar(&c.FlushInterval, prefix+"flush-interval", 0, "router: how often changed member lists, and statistics (at most every --stats-interval), are written to storage (default 1s)")
	fs.DurationVar(&c.StatsInterval, prefix+"stats-interval", 0, "router: least time between two writes of a group whose only changes are statistics (default the flush interval)")
	fs.Int64Var(&c.SeqBlock, prefix+"seq-block", 0, "router: seqnums reserved per group state write (default 1000)")
	c.Callbacks.RegisterFlags(fs, prefix+"callback-")
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	for _, n := range []int{c.Partitions, c.Workers, c.MaxBacklog, c.StreamReplicas, c.MaxDataBytes, c.MaxGroupNameBytes, c.MaxGroupMetaBytes,
		c.MaxAdmins, c.MaxGroups, c.MaxBans, c.RecentPageSize, c.RecentUsers, c.MemberChangeUsers, c.MemberChangeFanout, c.ResumeBatch, c.NonceMaxBindings, c.AuditsPerApp, c.HighStreams} {
		if n < 0 {
			return errors.New("router: negative size in config")
		}
	}
	for _, d := range []time.Duration{c.PinnedTTL, c.AliveTTL, c.HighMaxAge, c.C2CTimeout, c.MemberGrace, c.GatewayTimeout,
		c.MemberChangeInterval, c.MemberChangeMaxInterval, c.RecallWindow, c.AuditTimeout, c.AuthTimeout, c.NonceWindow, c.DedupeWindow, c.EventWait, c.FlushInterval, c.StatsInterval, c.GroupIdle} {
		if d < 0 {
			return errors.New("router: negative duration in config")
		}
	}
	if c.RoomRate < 0 || c.SeqBlock < 0 || c.MaxRepeatCount < 0 || c.HighMaxBytes < 0 || c.RPCMaxBytes < 0 || c.ResumeMemory < 0 || c.ResumeReadRate < 0 {
		return errors.New("router: negative rate or block")
	}
	if c.Partitions > 1024 {
		return errors.New("router: at most 1024 partitions")
	}
	if c.HighStreams > 64 {
		return errors.New("router: at most 64 HIGH streams")
	}
	return c.Callbacks.Validate()
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	setInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	setDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	setInt(&c.Partitions, 32)
	setInt(&c.Workers, 32)
	setInt(&c.MaxBacklog, 10000)
	setInt(&c.StreamReplicas, 1)
	setInt(&c.MaxDataBytes, 15<<10)
	setInt(&c.MaxGroupNameBytes, 128)
	setInt(&c.MaxGroupMetaBytes, 32<<10)
	setInt(&c.MaxAdmins, 3)
	setInt(&c.MaxGroups, 10000)
	setInt(&c.MaxBans, 10000)
	setInt(&c.RecentPageSize, 50)
	setInt(&c.RecentUsers, 50)
	setInt(&c.MemberChangeUsers, 20)
	setInt(&c.MemberChangeFanout, 200)
	setInt(&c.ResumeBatch, 1000)
	setInt(&c.HighStreams, 8)
	setInt(&c.NonceMaxBindings, 1_000_000)
	setInt(&c.AuditsPerApp, 256)
	setDur(&c.PinnedTTL, 30*time.Second)
	setDur(&c.AliveTTL, 5*time.Second)
	setDur(&c.HighMaxAge, 24*time.Hour)
	setDur(&c.C2CTimeout, 3*time.Second)
	setDur(&c.MemberGrace, 10*time.Second)
	setDur(&c.GatewayTimeout, 10*time.Second)
	setDur(&c.MemberChangeInterval, time.Second)
	setDur(&c.MemberChangeMaxInterval, 10*time.Second)
	setDur(&c.RecallWindow, 2*time.Minute)
	setDur(&c.AuditTimeout, time.Second)
	setDur(&c.AuthTimeout, 5*time.Second)
	setDur(&c.NonceWindow, time.Hour)
	setDur(&c.DedupeWindow, 2*time.Minute)
	setDur(&c.EventWait, 2*time.Second)
	setDur(&c.FlushInterval, time.Second)
	setDur(&c.GroupIdle, 5*time.Minute)
	setDur(&c.StatsInterval, c.FlushInterval)
	if c.RoomRate == 0 {
		c.RoomRate = 500
	}
	if c.MaxRepeatCount == 0 {
		c.MaxRepeatCount = 1000
	}
	if c.SeqBlock == 0 {
		c.SeqBlock = 1000
	}
	if c.HighMaxBytes == 0 {
		c.HighMaxBytes = 8 << 30
	}
	if c.RPCMaxBytes == 0 {
		c.RPCMaxBytes = 256 << 20
	}
	if c.ResumeMemory == 0 {
		c.ResumeMemory = 64 << 20
	}
	if c.ResumeReadRate == 0 {
		c.ResumeReadRate = 20_000
	}
	c.Callbacks.StreamReplicas = c.StreamReplicas
	c.Callbacks = c.Callbacks.WithDefaults()
	return c
}

// memberChangeEvery returns the least time between two memberchange
// events of a group of n members: MemberChangeInterval, stretched for a
// group of more than MemberChangeFanout members so that its events cost
// about MemberChangeFanout deliveries a second, up to
// MemberChangeMaxInterval.
func (c *Config) memberChangeEvery(n int) time.Duration {
	if c.MemberChangeFanout <= 0 { // not defaulted: no stretching
		return c.MemberChangeInterval
	}
	every := time.Duration(n) * time.Second / time.Duration(c.MemberChangeFanout)
	return max(c.MemberChangeInterval, min(every, c.MemberChangeMaxInterval))
}
