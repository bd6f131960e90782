package audit

// ParseVerifyLeafForTest exposes the verification parser to tests.
func ParseVerifyLeafForTest(b []byte) (struct {
	Actor, ActorPrev string
	ActorSeq         uint64
	Data             []byte
}, error) {
	l, err := parseVerifyLeaf(b)
	return struct {
		Actor, ActorPrev string
		ActorSeq         uint64
		Data             []byte
	}{l.Actor, l.ActorPrev, l.ActorSeq, l.Data}, err
}
