package manifest

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/herald-lb/herald/api/v1alpha1"
	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/api/v1beta2"
	"github.com/herald-lb/herald/internal/config"
)

// DefaultNamespace is where Herald (like MetalLB) is usually installed.
const DefaultNamespace = "metallb-system"

// Finding is one problem or warning, placed in its file.
type Finding struct {
	File string
	// Line is the first line of the object's document (1-based); 0 when
	// the finding is not tied to one document.
	Line int
	// Doc is the document's position among the file's documents (0-based).
	Doc       int
	Kind      string
	Name      string
	Field     string
	Message   string
	Transient bool

	// order keeps findings in file order: source index, then position.
	src int
}

// String formats the finding as "FILE:LINE: KIND/NAME: FIELD: MESSAGE",
// leaving out the parts it does not have.
func (f Finding) String() string {
	var b strings.Builder
	b.WriteString(f.File)
	if f.Line > 0 {
		fmt.Fprintf(&b, ":%d", f.Line)
	}
	b.WriteString(": ")
	if f.Kind != "" || f.Name != "" {
		b.WriteString(f.Kind)
		if f.Name != "" {
			b.WriteString("/")
			b.WriteString(f.Name)
		}
		b.WriteString(": ")
	}
	if f.Field != "" {
		b.WriteString(f.Field)
		b.WriteString(": ")
	}
	b.WriteString(f.Message)
	return b.String()
}

// Report is the outcome of Validate.
type Report struct {
	// Objects counts the configuration objects read: metallb.io's, and
	// Herald's own herald-lb.io's.
	Objects int
	// Ignored counts the objects of other kinds that were skipped.
	Ignored int
	// Problems make the set invalid.
	Problems []Finding
	// Warnings do not.
	Warnings []Finding
}

// Valid reports whether there are no problems.
func (r Report) Valid() bool { return len(r.Problems) == 0 }

// Write prints the warnings and problems, one per line, then a summary
// line when the set is valid.
func (r Report) Write(w io.Writer) error {
	for _, f := range r.Warnings {
		if _, err := fmt.Fprintf(w, "warning: %s\n", f); err != nil {
			return err
		}
	}
	for _, f := range r.Problems {
		if _, err := fmt.Fprintln(w, f); err != nil {
			return err
		}
	}
	if r.Valid() {
		noun := "objects"
		if r.Objects == 1 {
			noun = "object"
		}
		_, err := fmt.Fprintf(w, "%d %s valid\n", r.Objects, noun)
		return err
	}
	return nil
}

// location is where an object was read.
type location struct {
	file, line, doc, src int
}

// objectKey identifies an object for placing config's problems.
type objectKey struct{ kind, namespace, name string }

// set is everything decoded, ready for internal/config.
type set struct {
	sources   []Source
	namespace string
	res       config.Resources
	where     map[objectKey]location
	report    Report
}

// Validate decodes every source and checks the metallb.io and herald-lb.io
// objects among them as one configuration, as the controller would see them in
// namespace. Objects without a namespace are put in it; objects in another
// namespace are refused. Namespaces are used to resolve namespaceSelectors,
// Secrets to check BGPPeer passwordSecrets, Nodes to check overlapping
// nodeSelectors; everything else outside those groups is ignored.
func Validate(sources []Source, namespace string) Report {
	s := decode(sources, namespace)
	res := config.Validate(s.res)
	for _, p := range res.Problems {
		s.report.Problems = append(s.report.Problems, s.place(p))
	}
	for _, p := range res.Warnings {
		s.report.Warnings = append(s.report.Warnings, s.place(p))
	}
	byPlace := func(a, b Finding) int { return cmp.Or(cmp.Compare(a.src, b.src), cmp.Compare(a.Line, b.Line)) }
	slices.SortStableFunc(s.report.Problems, byPlace)
	slices.SortStableFunc(s.report.Warnings, byPlace)
	return s.report
}

// Decode reads the sources into the resources internal/config takes,
// without checking them as a configuration. The report holds what could
// not be decoded.
func Decode(sources []Source, namespace string) (config.Resources, Report) {
	s := decode(sources, namespace)
	return s.res, s.report
}

func decode(sources []Source, namespace string) *set {
	s := &set{sources: sources, namespace: namespace, where: map[objectKey]location{},
		res: config.Resources{Namespace: namespace}}
	for i, src := range sources {
		for _, d := range splitDocuments(i, src.Data) {
			s.document(d)
		}
	}
	return s
}

// place turns a config problem into a finding at its object's location.
func (s *set) place(p config.Problem) Finding {
	f := Finding{Kind: p.Kind, Name: p.Name, Field: p.Field, Message: p.Message, Transient: p.Transient, src: len(s.sources)}
	if loc, ok := s.where[objectKey{p.Kind, p.Namespace, p.Name}]; ok {
		f.File, f.Line, f.Doc, f.src = s.sources[loc.file].Name, loc.line, loc.doc, loc.src
	} else {
		f.File = "(all files)"
	}
	if p.Field == "metadata.namespace" {
		f.Message += fmt.Sprintf(" (if Herald runs in another namespace, pass it with --namespace; this check used %q)", s.namespace)
	}
	return f
}

func (s *set) fail(d document, kind, name, msg string) {
	s.report.Problems = append(s.report.Problems, Finding{
		File: s.sources[d.file].Name, Line: d.line, Doc: d.index, Kind: kind, Name: name, Message: msg, src: d.file,
	})
}

func (s *set) warn(d document, kind, name, msg string) {
	s.report.Warnings = append(s.report.Warnings, Finding{
		File: s.sources[d.file].Name, Line: d.line, Doc: d.index, Kind: kind, Name: name, Message: msg, src: d.file,
	})
}

// document decodes one document, which may be a v1 List.
func (s *set) document(d document) {
	if msg, kind, name := aliasProblem(d.data); msg != "" {
		s.fail(d, kind, name, msg)
		return
	}
	var tm typeMeta
	if err := yaml.Unmarshal(d.data, &tm); err != nil {
		s.fail(d, "", "", "not a valid YAML object: "+cleanDecodeError(err))
		return
	}
	if tm.APIVersion == "v1" && tm.Kind == "List" {
		for _, item := range tm.Items {
			var itm typeMeta
			if err := yaml.Unmarshal(item, &itm); err != nil {
				s.fail(d, "", "", "not a valid YAML object: "+cleanDecodeError(err))
				continue
			}
			s.object(d, item, itm)
		}
		return
	}
	s.object(d, d.data, tm)
}

// Status kinds are written by Herald itself; a manifest may hold them (a
// `kubectl get -o yaml` dump) and they say nothing about the configuration.
var statusKinds = map[string]bool{"ServiceL2Status": true, "ServiceBGPStatus": true, "ConfigurationState": true}

// object decodes one object, whose type and name tm holds, and adds it to
// the set.
func (s *set) object(d document, data []byte, tm typeMeta) {
	name := tm.Metadata.Name
	if tm.APIVersion == "" || tm.Kind == "" {
		s.fail(d, tm.Kind, name, "the document has no apiVersion or kind; every object needs both")
		return
	}
	group, version, found := strings.Cut(tm.APIVersion, "/")
	if !found {
		group, version = "", tm.APIVersion
	}
	strict := func(into any) bool {
		if err := yaml.UnmarshalStrict(data, into); err != nil {
			s.fail(d, tm.Kind, name, cleanDecodeError(err))
			return false
		}
		return true
	}

	if group != v1beta1.GroupVersion.Group && group != v1alpha1.GroupVersion.Group {
		if group == "" && version == "v1" {
			s.core(d, tm, strict)
			return
		}
		s.report.Ignored++
		return
	}
	if version == "v1beta1" && statusKinds[tm.Kind] {
		s.report.Ignored++
		return
	}

	ns := tm.Metadata.Namespace
	if ns == "" {
		ns = s.namespace
	}
	key := objectKey{tm.Kind, ns, name}
	if prev, dup := s.where[key]; dup && name != "" {
		s.fail(d, tm.Kind, name, fmt.Sprintf("also defined at %s:%d; each object may appear once, so remove one of them",
			s.sources[prev.file].Name, prev.line))
		return
	}
	s.report.Objects++
	var ok bool
	switch tm.APIVersion + " " + tm.Kind {
	case "metallb.io/v1beta1 IPAddressPool":
		ok = decodeInto(strict, ns, &s.res.Pools)
	case "metallb.io/v1beta1 L2Advertisement":
		ok = decodeInto(strict, ns, &s.res.L2Advertisements)
	case "metallb.io/v1beta1 BGPAdvertisement":
		ok = decodeInto(strict, ns, &s.res.BGPAdvertisements)
	case "metallb.io/v1beta1 BFDProfile":
		ok = decodeInto(strict, ns, &s.res.BFDProfiles)
	case "metallb.io/v1beta1 Community":
		ok = decodeInto(strict, ns, &s.res.Communities)
	case "metallb.io/v1beta2 BGPPeer":
		ok = decodeInto(strict, ns, &s.res.BGPPeers)
	case "herald-lb.io/v1alpha1 CloudAdvertisement":
		ok = decodeInto(strict, ns, &s.res.CloudAdvertisements)
	case "metallb.io/v1beta1 BGPPeer":
		var o v1beta1.BGPPeer
		if ok = strict(&o); ok {
			var hub v1beta2.BGPPeer
			if err := o.ConvertTo(&hub); err != nil {
				s.fail(d, tm.Kind, name, err.Error())
				ok = false
				break
			}
			hub.Namespace = ns
			s.res.BGPPeers = append(s.res.BGPPeers, hub)
			s.warn(d, tm.Kind, name, "metallb.io/v1beta1 BGPPeer is deprecated, please use metallb.io/v1beta2 (the fields are the same)")
		}
	default:
		s.fail(d, tm.Kind, name, fmt.Sprintf(
			"unknown %s kind or version %q; Herald reads IPAddressPool, L2Advertisement, BGPAdvertisement, BFDProfile "+
				"and Community in metallb.io/v1beta1, BGPPeer in metallb.io/v1beta2 (or the deprecated v1beta1), "+
				"and CloudAdvertisement in herald-lb.io/v1alpha1", group, tm.APIVersion+" "+tm.Kind))
	}
	if ok {
		s.where[key] = location{file: d.file, line: d.line, doc: d.index, src: d.file}
	}
}

// decodeInto decodes the document into a new T in namespace ns and appends
// it to list.
func decodeInto[T any, P interface {
	*T
	SetNamespace(string)
}](strict func(any) bool, ns string, list *[]T) bool {
	var o T
	if !strict(&o) {
		return false
	}
	P(&o).SetNamespace(ns)
	*list = append(*list, o)
	return true
}

// core takes the core/v1 kinds the configuration depends on.
func (s *set) core(d document, tm typeMeta, strict func(any) bool) {
	switch tm.Kind {
	case "Namespace":
		var o corev1.Namespace
		if strict(&o) {
			s.res.Namespaces = append(s.res.Namespaces, o)
		}
	case "Secret":
		var o corev1.Secret
		if strict(&o) {
			if o.Namespace == "" {
				o.Namespace = s.namespace
			}
			if o.Type == "" {
				o.Type = corev1.SecretTypeOpaque
			}
			s.res.Secrets = append(s.res.Secrets, o)
		}
	case "Node":
		var o corev1.Node
		if strict(&o) {
			s.res.Nodes = append(s.res.Nodes, o)
		}
	default:
		s.report.Ignored++
	}
}
