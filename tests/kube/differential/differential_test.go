package differential

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	kstorage "k8s.io/apiserver/pkg/storage"
	"k8s.io/utils/ptr"

	lib "apiserver-storage/go/storage"
)

var transformerCases = []struct{ name, providers string }{
	{"identity", provider("identity")},
	{"aescbc", provider("aescbc", key1) + provider("identity")},
	{"aesgcm", provider("aesgcm", key1) + provider("identity")},
	{"secretbox", provider("secretbox", key1) + provider("identity")},
}

// TestDifferential runs every scenario for each codec and transformer, then
// the rotation and compaction scenarios (compaction last: it affects all of
// etcd), and prints the stored-bytes table.
func TestDifferential(t *testing.T) {
	for _, codec := range []string{"json", "protobuf"} {
		for _, tc := range transformerCases {
			t.Run(codec+"/"+tc.name, func(t *testing.T) {
				enc := newEncryption(t, tc.providers)
				for _, k := range kinds {
					t.Run(k.gvk.Kind, func(t *testing.T) {
						p := openPair(t, k, "/diff-"+codec+"-"+tc.name, codec, enc)
						t.Run("objects", p.objects)
						t.Run("update", p.update)
						t.Run("delete", p.delete)
						t.Run("ttl", p.ttl)
						t.Run("count", p.count)
						t.Run("list", p.list)
						t.Run("watch", p.watch)
						t.Run("errors", p.errors)
						t.Run("wrong key", p.wrongKey)
					})
				}
			})
		}
		for _, typ := range []string{"aescbc", "aesgcm", "secretbox"} {
			t.Run(codec+"/rotation/"+typ, func(t *testing.T) { rotation(t, codec, typ) })
		}
	}
	for _, codec := range []string{"json", "protobuf"} {
		t.Run(codec+"/compaction", func(t *testing.T) { compaction(t, codec) })
	}
	printRawTable()
	printKnownDifferences()
}

// objects: an object written by either side reads identically on both, and
// both store the same content.
func (p *pair) objects(t *testing.T) {
	obj := p.k.sample(objMeta("diff", "obj"))
	goOut := p.k.newObj()
	if err := p.gs.Create(ctx(t), p.key("diff", "by-go"), obj, goOut, 0); err != nil {
		t.Fatalf("Kubernetes Create: %v", err)
	}
	libOut, err := p.ls.Create(ctx(t), p.key("diff", "by-lib"), p.input(t, obj), 0)
	if err != nil {
		t.Fatalf("library Create: %v", err)
	}
	byGo, _ := p.bothGet(t, p.key("diff", "by-go"))
	byLib, _ := p.bothGet(t, p.key("diff", "by-lib"))
	sameJSON(t, "Kubernetes Create's result", byGo, p.served(t, goOut))
	sameJSON(t, "library Create's result", byLib, p.served(t, p.fromLib(t, libOut)))
	// The same object, whoever wrote it, at different revisions.
	g, l := p.fromLib(t, []byte(byGo)), p.fromLib(t, []byte(byLib))
	accessor(t, g).SetResourceVersion("")
	accessor(t, l).SetResourceVersion("")
	sameJSON(t, "the object each side wrote", p.served(t, g), p.served(t, l))
	rawGo, _ := p.raw(t, p.key("diff", "by-go"))
	rawLib, _ := p.raw(t, p.key("diff", "by-lib"))
	recordRaw(p.k, p.codec, bytes.Equal(rawGo, rawLib))
	if !bytes.Equal(rawGo, rawLib) {
		at := 0
		for at < len(rawGo) && at < len(rawLib) && rawGo[at] == rawLib[at] {
			at++
		}
		near := func(b []byte) string { return string(b[max(0, at-40):min(len(b), at+40)]) }
		t.Errorf("the same object is stored differently (%d bytes by Kubernetes, %d by the library), from byte %d: Kubernetes %q, library %q",
			len(rawGo), len(rawLib), at, near(rawGo), near(rawLib))
	}
}

func label(obj runtime.Object, t *testing.T) runtime.Object {
	obj = obj.DeepCopyObject()
	a := accessor(t, obj)
	l := a.GetLabels()
	l["updated"] = "yes"
	a.SetLabels(l)
	return obj
}

// update: GuaranteedUpdate from each side on what the other wrote.
func (p *pair) update(t *testing.T) {
	byGo, byLib := p.key("diff", "by-go"), p.key("diff", "by-lib")
	dest := p.k.newObj()
	err := p.gs.GuaranteedUpdate(ctx(t), byLib, dest, false, nil, func(in runtime.Object, _ kstorage.ResponseMeta) (runtime.Object, *uint64, error) {
		return label(in, t), nil, nil
	}, nil)
	if err != nil {
		t.Fatalf("Kubernetes GuaranteedUpdate: %v", err)
	}
	updated, err := p.ls.GuaranteedUpdate(ctx(t), byGo, nil, false, func(current []byte, _ int64, _ bool) ([]byte, error) {
		return p.input(t, label(p.fromLib(t, current), t)), nil
	})
	if err != nil {
		t.Fatalf("library GuaranteedUpdate: %v", err)
	}
	gj, _ := p.bothGet(t, byGo)
	lj, _ := p.bothGet(t, byLib)
	sameJSON(t, "library GuaranteedUpdate's result", gj, p.served(t, p.fromLib(t, updated)))
	sameJSON(t, "Kubernetes GuaranteedUpdate's result", lj, p.served(t, dest))
	if got := accessor(t, p.fromLib(t, []byte(gj))).GetLabels()["updated"]; got != "yes" {
		t.Errorf("the library's update is not stored: %s", gj)
	}
}

// delete: preconditions that do not hold fail alike; deletes from either side
// return the last state and leave nothing behind.
func (p *pair) delete(t *testing.T) {
	byGo, byLib := p.key("diff", "by-go"), p.key("diff", "by-lib")
	wrong, stale := "not-the-uid", "1"
	for _, c := range []struct {
		name string
		gp   kstorage.Preconditions
		lp   lib.Preconditions
	}{
		{"UID mismatch", kstorage.Preconditions{UID: ptr.To(types.UID(wrong))}, lib.Preconditions{UID: wrong}},
		{"resourceVersion mismatch", kstorage.Preconditions{ResourceVersion: &stale}, lib.Preconditions{ResourceVersion: stale}},
	} {
		goErr := p.gs.Delete(ctx(t), byLib, p.k.newObj(), &c.gp, kstorage.ValidateAllObjectFunc, nil, kstorage.DeleteOptions{})
		_, libErr := p.ls.DeleteWithPreconditions(ctx(t), byGo, &c.lp)
		sameClass(t, "Delete, "+c.name, "InvalidObj", goErr, libErr)
	}
	beforeGo, _ := p.bothGet(t, byGo)
	beforeLib, _ := p.bothGet(t, byLib)
	uid := accessor(t, p.fromLib(t, []byte(beforeLib))).GetUID()
	// Both return the last state stamped with the deletion's revision.
	goOut := p.k.newObj()
	if err := p.gs.Delete(ctx(t), byLib, goOut, &kstorage.Preconditions{UID: &uid}, kstorage.ValidateAllObjectFunc, nil, kstorage.DeleteOptions{}); err != nil {
		t.Fatalf("Kubernetes Delete: %v", err)
	}
	sameJSON(t, "Kubernetes Delete's result", p.at(t, beforeLib, revision(t)), p.served(t, goOut))
	libOut, err := p.ls.DeleteWithPreconditions(ctx(t), byGo, &lib.Preconditions{UID: string(uid)})
	if err != nil {
		t.Fatalf("library Delete: %v", err)
	}
	sameJSON(t, "library Delete's result", p.at(t, beforeGo, revision(t)), p.served(t, p.fromLib(t, libOut)))
	for _, key := range []string{byGo, byLib} {
		_, goErr := p.goGet(t, key)
		_, libErr := p.ls.Get(ctx(t), key, lib.GetOptions{})
		sameClass(t, "Get after Delete", "NotFound", goErr, libErr)
		goErr = p.gs.Delete(ctx(t), key, p.k.newObj(), nil, kstorage.ValidateAllObjectFunc, nil, kstorage.DeleteOptions{})
		_, libErr = p.ls.Delete(ctx(t), key)
		sameClass(t, "Delete of a deleted key", "NotFound", goErr, libErr)
	}
}

// ttl: a Create with a TTL attaches a lease of the same granted TTL.
func (p *pair) ttl(t *testing.T) {
	const ttl = 300
	obj := p.k.sample(objMeta("ttl", "obj"))
	if err := p.gs.Create(ctx(t), p.key("ttl", "by-go"), obj, p.k.newObj(), ttl); err != nil {
		t.Fatal(err)
	}
	if _, err := p.ls.Create(ctx(t), p.key("ttl", "by-lib"), p.input(t, obj), ttl*time.Second); err != nil {
		t.Fatal(err)
	}
	granted := map[string]int64{}
	for _, who := range []string{"by-go", "by-lib"} {
		key := p.key("ttl", who)
		resp, err := etcd.Get(ctx(t), p.etcdKey(key))
		if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].Lease == 0 {
			t.Fatalf("%s has no lease: %v %v", key, resp, err)
		}
		l, err := etcd.TimeToLive(ctx(t), clientv3.LeaseID(resp.Kvs[0].Lease))
		if err != nil {
			t.Fatal(err)
		}
		if l.TTL < ttl-10 || l.TTL > l.GrantedTTL {
			t.Errorf("%s: lease TTL %d of %d granted, want about %d", key, l.TTL, l.GrantedTTL, ttl)
		}
		granted[who] = l.GrantedTTL
		p.bothGet(t, key)
	}
	if granted["by-go"] != granted["by-lib"] {
		t.Errorf("granted lease TTLs differ: Kubernetes %d, library %d", granted["by-go"], granted["by-lib"])
	}
}

// count: Kubernetes' Stats and the library's Count agree.
func (p *pair) count(t *testing.T) {
	stats, err := p.gs.Stats(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	n, err := p.ls.Count(ctx(t), "/"+p.k.gr.Resource)
	if err != nil {
		t.Fatal(err)
	}
	if n != stats.ObjectCount || n == 0 {
		t.Errorf("Count: Kubernetes %d, library %d", stats.ObjectCount, n)
	}
}

// libList is the library's list page as JSON.
type libList struct {
	Items    []json.RawMessage `json:"items"`
	Metadata metav1.ListMeta   `json:"metadata"`
}

type page struct {
	items     []string
	rv        string
	continued string
	remaining *int64
}

func (p *pair) goPage(t *testing.T, dir, rv string, limit int64, token string) (page, error) {
	list := p.k.newList()
	err := p.gs.GetList(ctx(t), dir, kstorage.ListOptions{
		ResourceVersion: rv,
		Recursive:       true,
		Predicate:       kstorage.SelectionPredicate{Label: labels.Everything(), Field: fields.Everything(), Limit: limit, Continue: token},
	}, list)
	if err != nil {
		return page{}, err
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		t.Fatal(err)
	}
	lm, _ := meta.ListAccessor(list)
	pg := page{rv: lm.GetResourceVersion(), continued: lm.GetContinue(), remaining: lm.GetRemainingItemCount()}
	for _, item := range items {
		pg.items = append(pg.items, p.served(t, item))
	}
	return pg, nil
}

func (p *pair) libPage(t *testing.T, dir, rv string, limit int64, token string) (page, error) {
	data, err := p.ls.ListAt(ctx(t), dir, rv, limit, token)
	if err != nil {
		return page{}, err
	}
	var l libList
	if err := json.Unmarshal(data, &l); err != nil {
		t.Fatalf("the library's list: %v\n%s", err, data)
	}
	pg := page{rv: l.Metadata.ResourceVersion, continued: l.Metadata.Continue, remaining: l.Metadata.RemainingItemCount}
	for _, item := range l.Items {
		pg.items = append(pg.items, p.served(t, p.fromLib(t, item)))
	}
	return pg, nil
}

func samePage(t *testing.T, what string, g, l page) {
	t.Helper()
	if len(g.items) != len(l.items) {
		t.Errorf("%s: Kubernetes has %d items, the library %d", what, len(g.items), len(l.items))
	}
	for i := range min(len(g.items), len(l.items)) {
		sameJSON(t, fmt.Sprintf("%s, item %d", what, i), g.items[i], l.items[i])
	}
	if g.rv != l.rv || g.continued != l.continued {
		t.Errorf("%s: Kubernetes resourceVersion %q continue %q, library %q %q", what, g.rv, g.continued, l.rv, l.continued)
	}
	if fmt.Sprint(deref(g.remaining)) != fmt.Sprint(deref(l.remaining)) {
		t.Errorf("%s: remainingItemCount: Kubernetes %v, library %v", what, deref(g.remaining), deref(l.remaining))
	}
}

func deref(n *int64) any {
	if n == nil {
		return nil
	}
	return *n
}

// list: pages of 2 out of 5 objects; a continue token from either side
// continues on the other with the same items, revision and remaining count.
func (p *pair) list(t *testing.T) {
	for i := range 5 {
		obj := p.k.sample(objMeta("list", "item-"+strconv.Itoa(i)))
		key := p.key("list", "item-"+strconv.Itoa(i))
		var err error
		if i%2 == 0 {
			err = p.gs.Create(ctx(t), key, obj, p.k.newObj(), 0)
		} else {
			_, err = p.ls.Create(ctx(t), key, p.input(t, obj), 0)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	dir := "/" + p.k.gr.Resource + "/list"
	// A write after the first page: continued pages still show the first's revision.
	later := func() {
		obj := p.k.sample(objMeta("list", "item-9"))
		if err := p.gs.Create(ctx(t), p.key("list", "item-9"), obj, p.k.newObj(), 0); err != nil {
			t.Fatal(err)
		}
	}
	g, err := p.goPage(t, dir, "", 2, "")
	if err != nil {
		t.Fatal(err)
	}
	l, err := p.libPage(t, dir, "", 2, "")
	if err != nil {
		t.Fatal(err)
	}
	samePage(t, "first page", g, l)
	later()
	for n := 2; g.continued != "" && l.continued != ""; n++ {
		// Each side continues the other's token.
		ng, err := p.goPage(t, dir, "", 2, l.continued)
		if err != nil {
			t.Fatalf("Kubernetes continuing the library's token: %v", err)
		}
		nl, err := p.libPage(t, dir, "", 2, g.continued)
		if err != nil {
			t.Fatalf("the library continuing Kubernetes' token: %v", err)
		}
		samePage(t, fmt.Sprintf("page %d", n), ng, nl)
		g, l = ng, nl
	}
	all, _ := p.goPage(t, dir, "", 0, "")
	whole, _ := p.libPage(t, dir, "", 0, "")
	samePage(t, "unpaged list", all, whole)
	if len(all.items) != 6 {
		t.Errorf("unpaged list has %d items, want 6", len(all.items))
	}
}

type event struct {
	typ string
	obj string
}

// watch: a watch from a resourceVersion on either side sees the same events.
func (p *pair) watch(t *testing.T) {
	rv := strconv.FormatInt(revision(t), 10)
	a, b := p.key("watch", "a"), p.key("watch", "b")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(p.gs.Create(ctx(t), a, p.k.sample(objMeta("watch", "a")), p.k.newObj(), 0))
	_, err := p.ls.Create(ctx(t), b, p.input(t, p.k.sample(objMeta("watch", "b"))), 0)
	must(err)
	must(p.gs.GuaranteedUpdate(ctx(t), b, p.k.newObj(), false, nil, func(in runtime.Object, _ kstorage.ResponseMeta) (runtime.Object, *uint64, error) {
		return label(in, t), nil, nil
	}, nil))
	_, err = p.ls.GuaranteedUpdate(ctx(t), a, nil, false, func(current []byte, _ int64, _ bool) ([]byte, error) {
		return p.input(t, label(p.fromLib(t, current), t)), nil
	})
	must(err)
	_, err = p.ls.Delete(ctx(t), a)
	must(err)
	must(p.gs.Delete(ctx(t), b, p.k.newObj(), nil, kstorage.ValidateAllObjectFunc, nil, kstorage.DeleteOptions{}))
	const want = 6

	dir := "/" + p.k.gr.Resource + "/watch"
	gw, err := p.gs.Watch(ctx(t), dir, kstorage.ListOptions{ResourceVersion: rv, Recursive: true, Predicate: kstorage.Everything})
	must(err)
	defer gw.Stop()
	var goEvents []event
	timeout := time.After(10 * time.Second)
	for len(goEvents) < want {
		select {
		case ev := <-gw.ResultChan():
			if ev.Type == watch.Error {
				t.Fatalf("Kubernetes watch: %v", apierrors.FromObject(ev.Object))
			}
			goEvents = append(goEvents, event{string(ev.Type), p.served(t, ev.Object)})
		case <-timeout:
			t.Fatalf("Kubernetes watch: %d of %d events", len(goEvents), want)
		}
	}
	lw, err := p.ls.Watch(ctx(t), dir, lib.WatchOptions{ResourceVersion: rv, Recursive: true})
	must(err)
	defer lw.Stop()
	var libEvents []event
	for len(libEvents) < want {
		select {
		case ev := <-lw.ResultChan():
			if ev.Type == lib.EventError {
				t.Fatalf("library watch: %v", ev.Err)
			}
			obj := p.fromLib(t, ev.Object)
			o := accessor(t, obj)
			if ev.Key != p.etcdKey(p.key("watch", o.GetName())) || strconv.FormatInt(ev.ResourceVersion, 10) != o.GetResourceVersion() {
				t.Errorf("library event key %s revision %d for %s at %s", ev.Key, ev.ResourceVersion, o.GetName(), o.GetResourceVersion())
			}
			libEvents = append(libEvents, event{string(ev.Type), p.served(t, obj)})
		case <-timeout:
			t.Fatalf("library watch: %d of %d events", len(libEvents), want)
		}
	}
	for i := range want {
		if goEvents[i].typ != libEvents[i].typ {
			t.Errorf("event %d: Kubernetes %s, library %s", i, goEvents[i].typ, libEvents[i].typ)
		}
		sameJSON(t, fmt.Sprintf("event %d (%s)", i, goEvents[i].typ), goEvents[i].obj, libEvents[i].obj)
	}
}

// errors: the same class of failure for the same mistake.
func (p *pair) errors(t *testing.T) {
	missing := p.key("errors", "missing")
	_, goErr := p.goGet(t, missing)
	_, libErr := p.ls.Get(ctx(t), missing, lib.GetOptions{})
	sameClass(t, "Get of a missing key", "NotFound", goErr, libErr)

	existing := p.key("list", "item-0")
	goErr = p.gs.Create(ctx(t), existing, p.k.sample(objMeta("list", "item-0")), p.k.newObj(), 0)
	_, libErr = p.ls.Create(ctx(t), existing, p.input(t, p.k.sample(objMeta("list", "item-0"))), 0)
	sameClass(t, "Create of an existing key", "Exists", goErr, libErr)

	stale := "1"
	identity := func(in runtime.Object, _ kstorage.ResponseMeta) (runtime.Object, *uint64, error) { return in, nil, nil }
	goErr = p.gs.GuaranteedUpdate(ctx(t), existing, p.k.newObj(), false, &kstorage.Preconditions{ResourceVersion: &stale}, identity, nil)
	_, libErr = p.ls.GuaranteedUpdate(ctx(t), existing, &lib.Preconditions{ResourceVersion: stale}, false,
		func(current []byte, _ int64, _ bool) ([]byte, error) { return current, nil })
	sameClass(t, "GuaranteedUpdate with a stale resourceVersion precondition", "InvalidObj", goErr, libErr)

	goErr = p.gs.GuaranteedUpdate(ctx(t), missing, p.k.newObj(), false, nil, identity, nil)
	_, libErr = p.ls.GuaranteedUpdate(ctx(t), missing, nil, false, func(current []byte, _ int64, _ bool) ([]byte, error) { return current, nil })
	sameClass(t, "GuaranteedUpdate of a missing key", "NotFound", goErr, libErr)

	future := strconv.FormatInt(revision(t)+1000, 10)
	goErr = p.gs.Get(ctx(t), existing, kstorage.GetOptions{ResourceVersion: future}, p.k.newObj())
	_, libErr = p.ls.Get(ctx(t), existing, lib.GetOptions{ResourceVersion: future})
	sameClass(t, "Get at a resourceVersion beyond etcd's", "Timeout", goErr, libErr)
	dir := "/" + p.k.gr.Resource + "/list"
	_, goErr = p.goPage(t, dir, future, 0, "")
	_, libErr = p.libPage(t, dir, future, 0, "")
	sameClass(t, "List at a resourceVersion beyond etcd's", "Timeout", goErr, libErr)
	_, goErr = p.goPage(t, dir, future, 2, "")
	_, libErr = p.libPage(t, dir, future, 2, "")
	sameClass(t, "paged List at a resourceVersion beyond etcd's", "Timeout", goErr, libErr)

	// Readable by the transformer, not by the codec.
	corrupt := p.key("corrupt", "obj")
	p.put(t, corrupt, []byte("{\"kind\":\"ConfigMap\",\"apiVersion\":"), p.tr)
	_, goErr = p.goGet(t, corrupt)
	_, libErr = p.ls.Get(ctx(t), corrupt, lib.GetOptions{})
	sameClass(t, "Get of a corrupt value", "CorruptObj", goErr, libErr)
	goErr = p.gs.GuaranteedUpdate(ctx(t), corrupt, p.k.newObj(), false, nil, identity, nil)
	_, libErr = p.ls.GuaranteedUpdate(ctx(t), corrupt, nil, false, func(current []byte, _ int64, _ bool) ([]byte, error) { return current, nil })
	sameClass(t, "GuaranteedUpdate of a corrupt value", "CorruptObj", goErr, libErr)
	goErr = p.gs.Delete(ctx(t), corrupt, p.k.newObj(), nil, kstorage.ValidateAllObjectFunc, nil, kstorage.DeleteOptions{})
	_, libErr = p.ls.Delete(ctx(t), corrupt)
	sameClass(t, "Delete of a corrupt value", "CorruptObj", goErr, libErr)
	_, goErr = p.goPage(t, "/"+p.k.gr.Resource+"/corrupt", "", 0, "")
	_, libErr = p.libPage(t, "/"+p.k.gr.Resource+"/corrupt", "", 0, "")
	sameClass(t, "List over a corrupt value", "CorruptObj", goErr, libErr)
}

// wrongKey: values encrypted with keys neither side has, under the same key
// name and under another name, fail to read alike (with identity alone, as
// encrypted data the identity provider refuses).
func (p *pair) wrongKey(t *testing.T) {
	plain, _ := p.raw(t, p.key("list", "item-0"))
	for _, c := range []struct {
		name string
		key  [2]string
	}{{"same key name, other secret", key1Bad}, {"unknown key name", keyOther}} {
		other := newEncryption(t, provider("aesgcm", c.key)).transformers[p.k.gr]
		key := p.key("wrongkey", c.key[0])
		p.put(t, key, plain, other)
		_, goErr := p.goGet(t, key)
		_, libErr := p.ls.Get(ctx(t), key, lib.GetOptions{})
		sameClass(t, "Get of a value encrypted with a "+c.name, "CorruptObj", goErr, libErr)
	}
	_, goErr := p.goPage(t, "/"+p.k.gr.Resource+"/wrongkey", "", 0, "")
	_, libErr := p.libPage(t, "/"+p.k.gr.Resource+"/wrongkey", "", 0, "")
	sameClass(t, "List over values encrypted with a wrong key", "CorruptObj", goErr, libErr)
}

// rotation: after a new key is put first, values written with the old one
// read on both sides, are stale for both, and a no-op update rewrites them.
func rotation(t *testing.T, codec, typ string) {
	old := newEncryption(t, provider(typ, key1))
	rotated := newEncryption(t, provider(typ, key2, key1))
	k := kinds[1]
	prefix := "/diff-" + codec + "-rotation-" + typ
	before, after := openPair(t, k, prefix, codec, old), openPair(t, k, prefix, codec, rotated)
	obj := k.sample(objMeta("rotation", "obj"))
	byGo, byLib := after.key("rotation", "by-go"), after.key("rotation", "by-lib")
	if err := before.gs.Create(ctx(t), byGo, obj, k.newObj(), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := before.ls.Create(ctx(t), byLib, before.input(t, obj), 0); err != nil {
		t.Fatal(err)
	}
	stale := func(key string, want bool) {
		t.Helper()
		_, goStale := after.raw(t, key)
		_, l := after.bothGet(t, key)
		if goStale != l.Stale || goStale != want {
			t.Errorf("%s stale: Kubernetes %v, library %v, want %v", key, goStale, l.Stale, want)
		}
	}
	stale(byGo, true)
	stale(byLib, true)
	// Kubernetes rewrites a stale value even when the update changes nothing.
	for _, key := range []string{byGo, byLib} {
		_, l := after.bothGet(t, key)
		goOut := k.newObj()
		if err := after.gs.GuaranteedUpdate(ctx(t), key, goOut, false, nil, func(in runtime.Object, _ kstorage.ResponseMeta) (runtime.Object, *uint64, error) {
			return in, nil, nil
		}, nil); err != nil {
			t.Fatal(err)
		}
		goRV := accessor(t, goOut).GetResourceVersion()
		if goRV == strconv.FormatInt(l.ResourceVersion, 10) {
			t.Errorf("Kubernetes did not rewrite stale %s", key)
		}
		stale(key, false)
	}
	// The library's no-op update of a stale value: the same as Kubernetes'.
	byLib2 := after.key("rotation", "by-lib-2")
	if _, err := before.ls.Create(ctx(t), byLib2, before.input(t, obj), 0); err != nil {
		t.Fatal(err)
	}
	_, l := after.bothGet(t, byLib2)
	out, err := after.ls.GuaranteedUpdate(ctx(t), byLib2, nil, false, func(current []byte, _ int64, _ bool) ([]byte, error) { return current, nil })
	if err != nil {
		t.Fatal(err)
	}
	if accessor(t, after.fromLib(t, out)).GetResourceVersion() == strconv.FormatInt(l.ResourceVersion, 10) {
		t.Errorf("the library did not rewrite stale %s", byLib2)
	}
	stale(byLib2, false)
}

// compaction: a list continued or a watch started at a compacted revision
// is Expired on both sides.
func compaction(t *testing.T, codec string) {
	enc := newEncryption(t, provider("identity"))
	p := openPair(t, kinds[0], "/diff-"+codec+"-compaction", codec, enc)
	for i := range 3 {
		if err := p.gs.Create(ctx(t), p.key("compact", "item-"+strconv.Itoa(i)), p.k.sample(objMeta("compact", "item-"+strconv.Itoa(i))), p.k.newObj(), 0); err != nil {
			t.Fatal(err)
		}
	}
	dir := "/" + p.k.gr.Resource + "/compact"
	g, err := p.goPage(t, dir, "", 1, "")
	if err != nil {
		t.Fatal(err)
	}
	l, err := p.libPage(t, dir, "", 1, "")
	if err != nil {
		t.Fatal(err)
	}
	old := g.rv
	// Revisions after old, so that a watch from old starts below the compaction.
	for _, name := range []string{"later-1", "later-2"} {
		if _, err := p.ls.Create(ctx(t), p.key("compact", name), p.input(t, p.k.sample(objMeta("compact", name))), 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := etcd.Compact(ctx(t), revision(t), clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	_, goErr := p.goPage(t, dir, "", 1, l.continued)
	_, libErr := p.libPage(t, dir, "", 1, g.continued)
	sameClass(t, "List continued at a compacted revision", "Expired", goErr, libErr)
	_, goErr = p.goPage(t, dir, old, 1, "")
	_, libErr = p.libPage(t, dir, old, 1, "")
	sameClass(t, "paged List at a compacted resourceVersion", "Expired", goErr, libErr)

	gw, err := p.gs.Watch(ctx(t), dir, kstorage.ListOptions{ResourceVersion: old, Recursive: true, Predicate: kstorage.Everything})
	if err == nil {
		defer gw.Stop()
		select {
		case ev := <-gw.ResultChan():
			if ev.Type == watch.Error {
				err = apierrors.FromObject(ev.Object)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Kubernetes watch at a compacted revision: no event")
		}
	}
	lw, libErr := p.ls.Watch(ctx(t), dir, lib.WatchOptions{ResourceVersion: old, Recursive: true})
	if libErr == nil {
		defer lw.Stop()
		select {
		case ev := <-lw.ResultChan():
			libErr = ev.Err
		case <-time.After(10 * time.Second):
			t.Fatal("library watch at a compacted revision: no event")
		}
	}
	sameClass(t, "Watch from a compacted resourceVersion", "Expired", err, libErr)
}
