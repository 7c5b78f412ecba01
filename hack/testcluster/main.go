// Standalone k8s.io/apiextensions-apiserver for local integration tests that
// ALSO serves the common built-in kinds (core/v1 Namespace, ConfigMap, Secret,
// ..., apps/v1, batch/v1, rbac, coordination, networking, ...). Built from
// Debian sid golang-k8s-*-dev sources. Authn: admin bearer token (system:masters)
// or anonymous; authz: Kubernetes RBAC (rbac.go, --authz=rbac, default) or
// AlwaysAllow (--authz=always). No controllers for built-in kinds (no pods run,
// no GC, no clusterIP).
//
// Built-in kinds are synthetic CRDs (see zz_builtin.go, compiled into
// k8s.io/apiextensions-apiserver/pkg/apiserver via `go build -overlay`) whose
// structural schemas are generated at startup from the structured-merge-diff
// schema that client-go ships for its typed apply configurations, so server-side
// apply merges lists exactly like kube-apiserver (containers by name, ports by
// containerPort+protocol, ...).
package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	authenticatorunion "k8s.io/apiserver/pkg/authentication/request/union"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	authorizerpath "k8s.io/apiserver/pkg/authorization/path"
	authorizerunion "k8s.io/apiserver/pkg/authorization/union"
	discoveryendpoint "k8s.io/apiserver/pkg/endpoints/discovery/aggregated"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/kube-openapi/pkg/builder3"
	openapiutil "k8s.io/kube-openapi/pkg/util"
	smdschema "sigs.k8s.io/structured-merge-diff/v6/schema"
	"sigs.k8s.io/structured-merge-diff/v6/typed"

	"github.com/spf13/cobra"
	noopoteltrace "go.opentelemetry.io/otel/trace/noop"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/apiserver"
	"k8s.io/apiextensions-apiserver/pkg/cmd/server/options"
	generatedopenapi "k8s.io/apiextensions-apiserver/pkg/generated/openapi"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/util/openapi"
	"k8s.io/apiserver/pkg/util/webhook"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/component-base/cli"
	netutils "k8s.io/utils/net"
)

// builtin_schema.yaml is extracted at build time from
// k8s.io/client-go/applyconfigurations/internal/internal.go (schemaYAML).
//
//go:embed builtin_schema.yaml
var builtinSchemaYAML string

type builtinKind struct {
	Group, Version, Kind, Plural, Singular string
	Namespaced, Status, Scale             bool
	ShortNames, Categories                 []string
	TypeName                               string // structured-merge-diff type name
	Defaults                               map[string]interface{}
	FieldSelectors                         []string // besides metadata.name/namespace
}

func bk(gv, kind, plural string, namespaced, status bool, short ...string) builtinKind {
	g, v := "", gv
	if i := strings.Index(gv, "/"); i >= 0 {
		g, v = gv[:i], gv[i+1:]
	}
	pkg := g
	switch g {
	case "":
		pkg = "core"
	case "rbac.authorization.k8s.io":
		pkg = "rbac"
	case "coordination.k8s.io", "networking.k8s.io", "storage.k8s.io", "scheduling.k8s.io", "discovery.k8s.io", "admissionregistration.k8s.io":
		pkg = strings.TrimSuffix(g, ".k8s.io")
	}
	return builtinKind{Group: g, Version: v, Kind: kind, Plural: plural, Singular: strings.ToLower(kind),
		Namespaced: namespaced, Status: status, ShortNames: short, TypeName: "io.k8s.api." + pkg + "." + v + "." + kind}
}

func builtinKinds() []builtinKind {
	ns, cl := true, false
	withStatus, noStatus := true, false
	k := []builtinKind{
		bk("v1", "Namespace", "namespaces", cl, withStatus, "ns"),
		bk("v1", "ConfigMap", "configmaps", ns, noStatus, "cm"),
		bk("v1", "Secret", "secrets", ns, noStatus),
		bk("v1", "ServiceAccount", "serviceaccounts", ns, noStatus, "sa"),
		bk("v1", "Service", "services", ns, withStatus, "svc"),
		bk("v1", "Event", "events", ns, noStatus, "ev"),
		bk("v1", "Pod", "pods", ns, withStatus, "po"),
		bk("v1", "PersistentVolumeClaim", "persistentvolumeclaims", ns, withStatus, "pvc"),
		bk("v1", "PersistentVolume", "persistentvolumes", cl, withStatus, "pv"),
		bk("v1", "Endpoints", "endpoints", ns, noStatus, "ep"),
		bk("v1", "LimitRange", "limitranges", ns, noStatus, "limits"),
		bk("v1", "ResourceQuota", "resourcequotas", ns, withStatus, "quota"),
		bk("apps/v1", "Deployment", "deployments", ns, withStatus, "deploy"),
		bk("apps/v1", "StatefulSet", "statefulsets", ns, withStatus, "sts"),
		bk("apps/v1", "DaemonSet", "daemonsets", ns, withStatus, "ds"),
		bk("apps/v1", "ReplicaSet", "replicasets", ns, withStatus, "rs"),
		bk("batch/v1", "Job", "jobs", ns, withStatus),
		bk("batch/v1", "CronJob", "cronjobs", ns, withStatus, "cj"),
		bk("rbac.authorization.k8s.io/v1", "Role", "roles", ns, noStatus),
		bk("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", ns, noStatus),
		bk("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", cl, noStatus),
		bk("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings", cl, noStatus),
		bk("coordination.k8s.io/v1", "Lease", "leases", ns, noStatus),
		bk("networking.k8s.io/v1", "Ingress", "ingresses", ns, withStatus, "ing"),
		bk("networking.k8s.io/v1", "IngressClass", "ingressclasses", cl, noStatus),
		bk("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", ns, noStatus, "netpol"),
		bk("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", ns, withStatus, "pdb"),
		bk("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", ns, withStatus, "hpa"),
		bk("storage.k8s.io/v1", "StorageClass", "storageclasses", cl, noStatus, "sc"),
		bk("scheduling.k8s.io/v1", "PriorityClass", "priorityclasses", cl, noStatus, "pc"),
		bk("discovery.k8s.io/v1", "EndpointSlice", "endpointslices", ns, noStatus),
		bk("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations", cl, noStatus),
		bk("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations", cl, noStatus),
	}
	// A few of kube-apiserver's defaults (applied on write and read, like CRD defaults).
	defaults := map[string]map[string]interface{}{
		"Namespace":   {"status": map[string]interface{}{"phase": "Active"}},
		"Secret":      {"type": "Opaque"},
		"Service":     {"spec.type": "ClusterIP", "spec.sessionAffinity": "None"},
		"Deployment":  {"spec.replicas": 1, "spec.revisionHistoryLimit": 10, "spec.progressDeadlineSeconds": 600},
		"StatefulSet": {"spec.replicas": 1, "spec.revisionHistoryLimit": 10, "spec.podManagementPolicy": "OrderedReady"},
		"DaemonSet":   {"spec.revisionHistoryLimit": 10},
		"ReplicaSet":  {"spec.replicas": 1},
		"Job":         {"spec.backoffLimit": 6},
	}
	// field selectors kube-apiserver supports on these kinds (jsonPath-expressible ones)
	selectors := map[string][]string{
		"Event": {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
			"involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason", "type", "reportingComponent"},
		"Pod":       {"spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName", "status.phase", "status.podIP", "status.nominatedNodeName"},
		"Secret":    {"type"},
		"Namespace": {"status.phase"},
		"Job":       {"status.successful"},
	}
	all := map[string][]string{"Pod": nil, "Service": nil, "Deployment": nil, "StatefulSet": nil, "DaemonSet": nil, "ReplicaSet": nil, "Job": nil, "CronJob": nil, "HorizontalPodAutoscaler": nil}
	for i := range k {
		k[i].Defaults = defaults[k[i].Kind]
		k[i].FieldSelectors = selectors[k[i].Kind]
		if _, ok := all[k[i].Kind]; ok {
			k[i].Categories = []string{"all"}
		}
		switch k[i].Kind {
		case "Deployment", "StatefulSet", "ReplicaSet":
			k[i].Scale = true
		}
	}
	return k
}

// ---- structured-merge-diff schema -> CRD structural schema ----

type schemaConv struct {
	types map[string]*smdschema.TypeDef
	stack map[string]bool
}

func preserve() apiextensionsv1.JSONSchemaProps {
	t := true
	return apiextensionsv1.JSONSchemaProps{XPreserveUnknownFields: &t}
}

func (c *schemaConv) resolve(t smdschema.TypeRef) (smdschema.Atom, string) {
	if t.NamedType != nil {
		if td, ok := c.types[*t.NamedType]; ok {
			return td.Atom, *t.NamedType
		}
		return smdschema.Atom{}, *t.NamedType
	}
	return t.Inlined, ""
}

func (c *schemaConv) ref(t smdschema.TypeRef) apiextensionsv1.JSONSchemaProps {
	a, name := c.resolve(t)
	if name != "" {
		if strings.HasPrefix(name, "__untyped") || c.stack[name] {
			return preserve()
		}
		c.stack[name] = true
		defer delete(c.stack, name)
	}
	p := c.atom(a, t.ElementRelationship)
	if t.Nullable {
		p.Nullable = true
	}
	return p
}

func emptyRef(t smdschema.TypeRef) bool {
	return t.NamedType == nil && t.Inlined.Scalar == nil && t.Inlined.List == nil && t.Inlined.Map == nil
}

func (c *schemaConv) atom(a smdschema.Atom, override *smdschema.ElementRelationship) apiextensionsv1.JSONSchemaProps {
	n := 0
	for _, b := range []bool{a.Scalar != nil, a.List != nil, a.Map != nil} {
		if b {
			n++
		}
	}
	if n != 1 {
		return preserve()
	}
	switch {
	case a.Scalar != nil:
		switch *a.Scalar {
		case smdschema.Numeric:
			return apiextensionsv1.JSONSchemaProps{Type: "number"}
		case smdschema.String:
			return apiextensionsv1.JSONSchemaProps{Type: "string"}
		case smdschema.Boolean:
			return apiextensionsv1.JSONSchemaProps{Type: "boolean"}
		}
		return preserve() // untyped: IntOrString, Quantity, Time, ...
	case a.List != nil:
		item := c.ref(a.List.ElementType)
		p := apiextensionsv1.JSONSchemaProps{Type: "array", Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &item}}
		rel := a.List.ElementRelationship
		if override != nil {
			rel = *override
		}
		switch {
		case rel == smdschema.Associative && len(a.List.Keys) > 0:
			lt := "map"
			p.XListType = &lt
			p.XListMapKeys = a.List.Keys
			// carry non-zero key defaults (e.g. ports[].protocol: TCP), as kube-apiserver defaults them
			if ea, _ := c.resolve(a.List.ElementType); ea.Map != nil {
				for _, f := range ea.Map.Fields {
					for _, key := range a.List.Keys {
						if f.Name == key && f.Default != nil && f.Default != "" && f.Default != 0 && f.Default != float64(0) {
							if prop, ok := item.Properties[key]; ok {
								raw, _ := json.Marshal(f.Default)
								prop.Default = &apiextensionsv1.JSON{Raw: raw}
								item.Properties[key] = prop
							}
						}
					}
				}
			}
		case rel == smdschema.Associative:
			lt := "set"
			p.XListType = &lt
		default:
			lt := "atomic"
			p.XListType = &lt
		}
		return p
	default:
		m := a.Map
		p := apiextensionsv1.JSONSchemaProps{Type: "object"}
		hasElem := !emptyRef(m.ElementType)
		if len(m.Fields) > 0 && hasElem {
			return preserve()
		}
		if len(m.Fields) > 0 {
			p.Properties = map[string]apiextensionsv1.JSONSchemaProps{}
			for _, f := range m.Fields {
				p.Properties[f.Name] = c.ref(f.Type)
			}
		} else if hasElem {
			e := c.ref(m.ElementType)
			p.AdditionalProperties = &apiextensionsv1.JSONSchemaPropsOrBool{Allows: true, Schema: &e}
		}
		rel := m.ElementRelationship
		if override != nil {
			rel = *override
		}
		if rel == smdschema.Atomic {
			mt := "atomic"
			p.XMapType = &mt
		}
		return p
	}
}

func builtinCRDs() ([]*apiextensionsv1.CustomResourceDefinition, []builtinKind, error) {
	parser, err := typed.NewParser(typed.YAMLObject(builtinSchemaYAML))
	if err != nil {
		return nil, nil, err
	}
	conv := &schemaConv{types: map[string]*smdschema.TypeDef{}, stack: map[string]bool{}}
	for i := range parser.Schema.Types {
		conv.types[parser.Schema.Types[i].Name] = &parser.Schema.Types[i]
	}
	established := metav1.NewTime(time.Now().Add(-time.Hour))
	var crds []*apiextensionsv1.CustomResourceDefinition
	kinds := builtinKinds()
	for _, k := range kinds {
		if _, ok := conv.types[k.TypeName]; !ok {
			return nil, nil, fmt.Errorf("type %s not in client-go schema", k.TypeName)
		}
		s := conv.ref(smdschema.TypeRef{NamedType: &k.TypeName})
		if s.Properties == nil {
			return nil, nil, fmt.Errorf("type %s is not a struct", k.TypeName)
		}
		// metadata is handled by the apiserver (ObjectMeta), as for any CRD
		s.Properties["metadata"] = apiextensionsv1.JSONSchemaProps{Type: "object"}
		for path, v := range k.Defaults {
			if err := setDefaultPath(&s, path, v); err != nil {
				return nil, nil, fmt.Errorf("%s: %v", k.Kind, err)
			}
		}
		scope := apiextensionsv1.ClusterScoped
		if k.Namespaced {
			scope = apiextensionsv1.NamespaceScoped
		}
		var sub *apiextensionsv1.CustomResourceSubresources
		if k.Status || k.Scale {
			sub = &apiextensionsv1.CustomResourceSubresources{}
			if k.Status {
				sub.Status = &apiextensionsv1.CustomResourceSubresourceStatus{}
			}
			if k.Scale {
				sub.Scale = &apiextensionsv1.CustomResourceSubresourceScale{SpecReplicasPath: ".spec.replicas", StatusReplicasPath: ".status.replicas"}
			}
		}
		var selectable []apiextensionsv1.SelectableField
		for _, f := range k.FieldSelectors {
			selectable = append(selectable, apiextensionsv1.SelectableField{JSONPath: "." + f})
		}
		names := apiextensionsv1.CustomResourceDefinitionNames{Plural: k.Plural, Singular: k.Singular, Kind: k.Kind,
			ListKind: k.Kind + "List", ShortNames: k.ShortNames, Categories: k.Categories}
		crd := &apiextensionsv1.CustomResourceDefinition{
			ObjectMeta: metav1.ObjectMeta{Name: k.Plural + "." + k.Group, UID: types.UID("builtin-" + k.Plural + "." + k.Group)},
			Spec: apiextensionsv1.CustomResourceDefinitionSpec{
				Group: k.Group, Names: names, Scope: scope,
				Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
					Name: k.Version, Served: true, Storage: true,
					Schema:       &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &s},
					Subresources: sub, SelectableFields: selectable,
				}},
				Conversion: &apiextensionsv1.CustomResourceConversion{Strategy: apiextensionsv1.NoneConverter},
			},
			Status: apiextensionsv1.CustomResourceDefinitionStatus{
				AcceptedNames: names, StoredVersions: []string{k.Version},
				Conditions: []apiextensionsv1.CustomResourceDefinitionCondition{
					{Type: apiextensionsv1.Established, Status: apiextensionsv1.ConditionTrue, LastTransitionTime: established},
					{Type: apiextensionsv1.NamesAccepted, Status: apiextensionsv1.ConditionTrue, LastTransitionTime: established},
				},
			},
		}
		crds = append(crds, crd)
	}
	return crds, kinds, nil
}

func setDefaultPath(root *apiextensionsv1.JSONSchemaProps, path string, v interface{}) error {
	parts := strings.SplitN(path, ".", 2)
	child, ok := root.Properties[parts[0]]
	if !ok {
		return fmt.Errorf("no field %q", parts[0])
	}
	if len(parts) == 1 {
		raw, _ := json.Marshal(v)
		child.Default = &apiextensionsv1.JSON{Raw: raw}
	} else if err := setDefaultPath(&child, parts[1], v); err != nil {
		return err
	}
	root.Properties[parts[0]] = child
	return nil
}

// ---- minimal admission for built-in kinds (and CRs) ----

// builtinAdmission does what kube-apiserver does in conversion/admission that
// the CR machinery does not: Secret stringData -> data, the
// kubernetes.io/metadata.name namespace label, and NamespaceLifecycle (objects
// can only be created in an existing namespace).
type builtinAdmission struct {
	loopback *rest.Config
	rbac     *rbacAuthorizer       // nil with --authz=always
	authz    authorizer.Authorizer // the server's authorizer ("escalate"/"bind" checks)
	once     sync.Once
	client   dynamic.Interface
	err      error
}

var (
	nsGVR  = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
)

func (a *builtinAdmission) Handles(op admission.Operation) bool {
	return op == admission.Create || op == admission.Update
}

func (a *builtinAdmission) Admit(ctx context.Context, attr admission.Attributes, _ admission.ObjectInterfaces) error {
	if attr.GetSubresource() != "" {
		return nil
	}
	u, ok := attr.GetObject().(*unstructured.Unstructured)
	if !ok {
		return nil
	}
	switch attr.GetResource().GroupResource() {
	case schema.GroupResource{Resource: "secrets"}:
		if sd, found, _ := unstructured.NestedMap(u.Object, "stringData"); found {
			data, _, _ := unstructured.NestedMap(u.Object, "data")
			if data == nil {
				data = map[string]interface{}{}
			}
			for k, v := range sd {
				if s, ok := v.(string); ok {
					data[k] = base64.StdEncoding.EncodeToString([]byte(s))
				}
			}
			u.Object["data"] = data
			delete(u.Object, "stringData")
		}
	case schema.GroupResource{Resource: "namespaces"}:
		labels := u.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		if labels["kubernetes.io/metadata.name"] != u.GetName() && u.GetName() != "" {
			labels["kubernetes.io/metadata.name"] = u.GetName()
			u.SetLabels(labels)
		}
	}
	return nil
}

func (a *builtinAdmission) Validate(ctx context.Context, attr admission.Attributes, _ admission.ObjectInterfaces) error {
	if err := a.validateNamespace(ctx, attr); err != nil {
		return err
	}
	if a.rbac != nil {
		// escalation prevention and roleRef immutability (kube-apiserver does this in the RBAC storage)
		return a.rbac.validateRBACWrite(ctx, a.authz, attr)
	}
	return nil
}

func (a *builtinAdmission) validateNamespace(ctx context.Context, attr admission.Attributes) error {
	ns := attr.GetNamespace()
	if attr.GetOperation() != admission.Create || ns == "" || attr.GetSubresource() != "" ||
		attr.GetResource().GroupResource() == (schema.GroupResource{Resource: "namespaces"}) {
		return nil
	}
	a.once.Do(func() { a.client, a.err = dynamic.NewForConfig(a.loopback) })
	if a.err != nil {
		return apierrors.NewInternalError(a.err)
	}
	obj, err := a.client.Resource(nsGVR).Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, ns)
		}
		return apierrors.NewInternalError(err)
	}
	if obj.GetDeletionTimestamp() != nil {
		return apierrors.NewForbidden(attr.GetResource().GroupResource(), attr.GetName(),
			fmt.Errorf("unable to create new content in namespace %s because it is being terminated", ns))
	}
	return nil
}

// ---- server ----

type noResolver struct{}

func (noResolver) ResolveEndpoint(namespace, name string, port int32) (*url.URL, error) {
	return nil, fmt.Errorf("service resolution not supported")
}

func main() {
	ctx := genericapiserver.SetupSignalContext()
	o := options.NewCustomResourceDefinitionsServerOptions(os.Stdout, os.Stderr)
	o.RecommendedOptions.CoreAPI = nil
	o.RecommendedOptions.Admission = nil
	o.RecommendedOptions.Authorization = nil // authorizer set in run() (--authz)
	o.RecommendedOptions.Authentication.RemoteKubeConfigFileOptional = true
	o.RecommendedOptions.Features.EnablePriorityAndFairness = false

	cmd := &cobra.Command{
		Use:   "driftless-test-apiserver",
		Short: "standalone apiextensions-apiserver + built-in kinds for tests",
		PersistentPreRunE: func(*cobra.Command, []string) error {
			return o.ServerRunOptions.ComponentGlobalsRegistry.Set()
		},
		RunE: func(c *cobra.Command, args []string) error {
			if err := o.Complete(); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return run(c, o)
		},
	}
	cmd.SetContext(ctx)
	o.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&authzMode, "authz", "rbac", "authorization: rbac (Kubernetes RBAC from the Role/ClusterRole/*Binding objects stored here; system:masters always allowed) or always (AlwaysAllow)")
	cmd.Flags().StringVar(&adminToken, "admin-token", "driftless-admin", "bearer token of user kubernetes-admin (groups system:masters, system:authenticated)")
	cmd.Flags().BoolVar(&anonymousAdmin, "anonymous-admin", false, "with --authz=rbac: also allow everything to unauthenticated requests (system:anonymous), as before RBAC")
	os.Exit(cli.Run(cmd))
}

var (
	authzMode      = "rbac"
	adminToken     = "driftless-admin"
	anonymousAdmin bool
)

func run(c *cobra.Command, o *options.CustomResourceDefinitionsServerOptions) error {
	if authzMode != "rbac" && authzMode != "always" {
		return fmt.Errorf("--authz must be rbac or always, not %q", authzMode)
	}
	if err := o.RecommendedOptions.SecureServing.MaybeDefaultWithSelfSignedCerts("localhost", nil, []net.IP{netutils.ParseIPSloppy("127.0.0.1")}); err != nil {
		return err
	}
	serverConfig := genericapiserver.NewRecommendedConfig(apiserver.Codecs)
	if err := o.ServerRunOptions.ApplyTo(&serverConfig.Config); err != nil {
		return err
	}
	if err := o.RecommendedOptions.ApplyTo(serverConfig); err != nil {
		return err
	}
	if err := o.APIEnablement.ApplyTo(&serverConfig.Config, apiserver.DefaultAPIResourceConfigSource(), apiserver.Scheme); err != nil {
		return err
	}
	// Authentication: the admin token (kubeconfig) -> kubernetes-admin in system:masters;
	// no credentials -> system:anonymous (delegating options: anonymous only). With rbac an
	// unknown bearer token is rejected (401) as by kube-apiserver; with always it falls back
	// to anonymous as before.
	if adminToken != "" {
		tok := authenticatorfactory.NewFromTokens(map[string]*user.DefaultInfo{adminToken: {Name: "kubernetes-admin",
			Groups: []string{user.SystemPrivilegedGroup, user.AllAuthenticated}}}, serverConfig.Authentication.APIAudiences)
		if authzMode == "rbac" {
			serverConfig.Authentication.Authenticator = authenticatorunion.NewFailOnError(tok, serverConfig.Authentication.Authenticator)
		} else {
			serverConfig.Authentication.Authenticator = authenticatorunion.New(tok, serverConfig.Authentication.Authenticator)
		}
	}
	var rbacAuthz *rbacAuthorizer
	var ruleResolver authorizer.RuleResolver = alwaysRules{}
	if authzMode == "rbac" {
		rbacAuthz = &rbacAuthorizer{}
		ruleResolver = rbacAuthz
		healthPaths, err := authorizerpath.NewAuthorizer([]string{"/healthz", "/readyz", "/livez"})
		if err != nil {
			return err
		}
		authzs := []authorizer.Authorizer{authorizerfactory.NewPrivilegedGroups(user.SystemPrivilegedGroup), healthPaths}
		if anonymousAdmin {
			authzs = append(authzs, authorizer.AuthorizerFunc(func(_ context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
				if a.GetUser() != nil && a.GetUser().GetName() == user.Anonymous {
					return authorizer.DecisionAllow, "anonymous-admin", nil
				}
				return authorizer.DecisionNoOpinion, "", nil
			}))
		}
		serverConfig.Authorization.Authorizer = authorizerunion.New(append(authzs, rbacAuthz)...)
	} else {
		serverConfig.Authorization.Authorizer = authorizerfactory.NewAlwaysAllowAuthorizer()
	}
	// No core API informers: an informer factory over an empty fake clientset.
	serverConfig.SharedInformerFactory = informers.NewSharedInformerFactory(fake.NewSimpleClientset(), 0)
	serverConfig.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(openapi.GetOpenAPIDefinitionsWithoutDisabledFeatures(generatedopenapi.GetOpenAPIDefinitions), openapinamer.NewDefinitionNamer(apiserver.Scheme, scheme.Scheme))
	serverConfig.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(openapi.GetOpenAPIDefinitionsWithoutDisabledFeatures(generatedopenapi.GetOpenAPIDefinitions), openapinamer.NewDefinitionNamer(apiserver.Scheme, scheme.Scheme))
	adm := &builtinAdmission{loopback: serverConfig.LoopbackClientConfig, rbac: rbacAuthz, authz: serverConfig.Authorization.Authorizer}
	authzHandler := &authzAPI{authz: serverConfig.Authorization.Authorizer, resolver: ruleResolver}
	serverConfig.AdmissionControl = adm // also NamespaceLifecycle for custom resources

	t0 := time.Now()
	crds, kinds, err := builtinCRDs()
	if err != nil {
		return fmt.Errorf("building built-in schemas: %v", err)
	}
	// ObjectMeta/TypeMeta models for SSA type converters (as the CRD handler gets them).
	staticSpec, err := builder3.BuildOpenAPIDefinitionsForResources(serverConfig.OpenAPIV3Config,
		openapiutil.GetCanonicalTypeName(&apiextensionsv1.CustomResourceDefinition{}))
	if err != nil {
		return err
	}
	klog.Infof("built %d built-in kind schemas in %v", len(crds), time.Since(t0))

	config := &apiserver.Config{
		GenericConfig: serverConfig,
		ExtraConfig: apiserver.ExtraConfig{
			CRDRESTOptionsGetter: options.NewCRDRESTOptionsGetter(*o.RecommendedOptions.Etcd, serverConfig.ResourceTransformers, serverConfig.StorageObjectCountTracker),
			ServiceResolver:      noResolver{},
			AuthResolverWrapper:  webhook.NewDefaultAuthenticationInfoResolverWrapper(nil, nil, serverConfig.LoopbackClientConfig, noopoteltrace.NewTracerProvider()),
		},
	}

	// Requests the CRD handler does not know (/api..., /apis, /apis/<builtin group>...)
	// reach this delegate.
	var agg discoveryendpoint.ResourceManager
	var builtin http.Handler
	aggHandler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { agg.ServeHTTP(w, r) })
	legacyGroups := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := r.Clone(r.Context())
		req.Header = http.Header{"Accept": {"application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"}}
		rec := httptest.NewRecorder()
		agg.ServeHTTP(rec, req)
		var l apidiscoveryv2.APIGroupDiscoveryList
		if err := json.Unmarshal(rec.Body.Bytes(), &l); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		out := metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}, Groups: []metav1.APIGroup{}}
		for _, g := range l.Items {
			ag := metav1.APIGroup{Name: g.Name}
			for _, v := range g.Versions {
				ag.Versions = append(ag.Versions, metav1.GroupVersionForDiscovery{GroupVersion: g.Name + "/" + v.Version, Version: v.Version})
			}
			if len(ag.Versions) > 0 {
				ag.PreferredVersion = ag.Versions[0]
			}
			out.Groups = append(out.Groups, ag)
		}
		writeJSON(w, out)
	})
	apis := discoveryendpoint.WrapAggregatedDiscoveryToHandler(legacyGroups, aggHandler, nil)
	legacyRoot := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"},
			ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: r.Host}}})
	})
	delegate := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/apis", "/apis/":
			apis.ServeHTTP(w, r)
		default:
			if r.URL.Path == "/apis/authorization.k8s.io" || strings.HasPrefix(r.URL.Path, "/apis/authorization.k8s.io/") {
				authzHandler.ServeHTTP(w, r)
				return
			}
			if r.URL.Path == "/apis/authentication.k8s.io/v1/tokenreviews" {
				serveTokenReview(w, r)
				return
			}
			builtin.ServeHTTP(w, r)
		}
	})
	server, err := config.Complete().New(genericapiserver.NewEmptyDelegateWithCustomHandler(delegate))
	if err != nil {
		return err
	}
	gs := server.GenericAPIServer
	agg = gs.AggregatedDiscoveryGroupManager
	addAuthzDiscovery(agg)
	synced := make(chan struct{})
	var builtinH http.Handler
	builtinH, err = apiserver.InstallBuiltin(gs, apiserver.BuiltinOptions{
		CRDs:                crds,
		RESTOptionsGetter:   config.ExtraConfig.CRDRESTOptionsGetter,
		Admission:           adm,
		ServiceResolver:     config.ExtraConfig.ServiceResolver,
		AuthResolverWrapper: config.ExtraConfig.AuthResolverWrapper,
		RequestTimeout:      serverConfig.RequestTimeout,
		MinRequestTimeout:   time.Duration(serverConfig.MinRequestTimeout) * time.Second,
		StaticOpenAPISpec:   staticSpec,
		MaxRequestBodyBytes: serverConfig.MaxRequestBodyBytes,
		LegacyRoot:          legacyRoot,
		Synced:              synced,
	})
	if err != nil {
		return err
	}
	builtin = builtinCompat(builtinH, kinds)
	gs.AddPostStartHookOrDie("bootstrap-namespaces", func(hc genericapiserver.PostStartHookContext) error {
		select {
		case <-synced:
		case <-hc.Done():
			return nil
		}
		dc, err := dynamic.NewForConfig(hc.LoopbackClientConfig)
		if err != nil {
			return err
		}
		for _, name := range []string{"default", "kube-system", "kube-public", "kube-node-lease"} {
			nsObj := &unstructured.Unstructured{Object: map[string]interface{}{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]interface{}{"name": name}}}
			for i := 0; ; i++ {
				_, err := dc.Resource(nsGVR).Create(hc, nsObj, metav1.CreateOptions{})
				if err == nil || apierrors.IsAlreadyExists(err) {
					break
				}
				if i > 100 {
					return fmt.Errorf("creating namespace %s: %v", name, err)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
		setTokenClient(dc)
		go namespaceController(hc, dc, kinds)
		return nil
	})
	if rbacAuthz != nil {
		// bootstrap ClusterRoles/Bindings, then RBAC informers; /readyz waits for this hook
		gs.AddPostStartHookOrDie("rbac/bootstrap-roles", func(hc genericapiserver.PostStartHookContext) error {
			select {
			case <-synced:
			case <-hc.Done():
				return nil
			}
			t0 := time.Now()
			waitSynced, err := rbacAuthz.start(hc, hc.LoopbackClientConfig)
			if err != nil {
				return err
			}
			dc, err := dynamic.NewForConfig(hc.LoopbackClientConfig)
			if err != nil {
				return err
			}
			objs := bootstrapRBAC()
			errs := make([]error, len(objs))
			var wg sync.WaitGroup
			for i, obj := range objs {
				gvr := clusterRoleGVR
				if obj.GetKind() == "ClusterRoleBinding" {
					gvr = clusterRoleBindingGVR
				}
				wg.Add(1)
				go func(i int, obj *unstructured.Unstructured) {
					defer wg.Done()
					for try := 0; ; try++ {
						_, err := dc.Resource(gvr).Create(hc, obj, metav1.CreateOptions{FieldManager: "kube-apiserver"})
						if err == nil || apierrors.IsAlreadyExists(err) {
							return
						}
						if try > 100 {
							errs[i] = fmt.Errorf("creating %s %s: %v", obj.GetKind(), obj.GetName(), err)
							return
						}
						time.Sleep(100 * time.Millisecond)
					}
				}(i, obj)
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					return err
				}
			}
			logRBAC("bootstrap objects created in %v", time.Since(t0))
			if err := waitSynced(); err != nil {
				return err
			}
			logRBAC("bootstrap policy created and informers synced in %v", time.Since(t0))
			return nil
		})
	}
	return gs.PrepareRun().RunWithContext(c.Context())
}

// namespaceController stands in for kube-controller-manager's namespace and
// serviceaccount controllers: every namespace gets a "default" ServiceAccount,
// and when a Namespace is deleted (immediately: no spec.finalizers / Terminating
// phase here) the built-in namespaced objects it contained are deleted so that
// re-creating it starts empty (built-in kinds and custom resources; finalizers
// on them are honoured as usual, the namespace itself is already gone).
func namespaceController(ctx context.Context, dc dynamic.Interface, kinds []builtinKind) {
	saGVR := schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}
	for ctx.Err() == nil {
		w, err := dc.Resource(nsGVR).Watch(ctx, metav1.ListOptions{})
		if err != nil {
			time.Sleep(time.Second)
			continue
		}
		for ev := range w.ResultChan() {
			u, ok := ev.Object.(*unstructured.Unstructured)
			if !ok {
				continue
			}
			switch ev.Type {
			case "ADDED":
				sa := &unstructured.Unstructured{Object: map[string]interface{}{"apiVersion": "v1", "kind": "ServiceAccount",
					"metadata": map[string]interface{}{"name": "default", "namespace": u.GetName()}}}
				if _, err := dc.Resource(saGVR).Namespace(u.GetName()).Create(ctx, sa, metav1.CreateOptions{FieldManager: "kube-controller-manager"}); err != nil && !apierrors.IsAlreadyExists(err) {
					klog.Warningf("creating default ServiceAccount in %s: %v", u.GetName(), err)
				}
			case "DELETED":
				var gvrs []schema.GroupVersionResource
				for _, k := range kinds {
					if k.Namespaced {
						gvrs = append(gvrs, schema.GroupVersionResource{Group: k.Group, Version: k.Version, Resource: k.Plural})
					}
				}
				// and namespaced custom resources (storage version of each CRD)
				if crds, err := dc.Resource(crdGVR).List(ctx, metav1.ListOptions{}); err == nil {
					for _, crd := range crds.Items {
						if scope, _, _ := unstructured.NestedString(crd.Object, "spec", "scope"); scope != "Namespaced" {
							continue
						}
						group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
						plural, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "plural")
						versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
						for _, v := range versions {
							if vm, ok := v.(map[string]interface{}); ok && vm["served"] == true {
								gvrs = append(gvrs, schema.GroupVersionResource{Group: group, Version: fmt.Sprint(vm["name"]), Resource: plural})
								break
							}
						}
					}
				}
				for _, gvr := range gvrs {
					if err := dc.Resource(gvr).Namespace(u.GetName()).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
						klog.Warningf("cascade delete %s in %s: %v", gvr, u.GetName(), err)
					}
				}
			}
		}
		w.Stop()
	}
}

// builtinCompat adapts requests that kube-apiserver accepts for built-in kinds
// but the custom-resource handler does not:
//   - protobuf request bodies (client-go typed clients, `kubectl create cm`) are
//     decoded with client-go's scheme and re-encoded as JSON; protobuf is removed
//     from Accept (client-go decodes JSON replies whatever it asked for);
//   - strategic-merge-patch (client-side `kubectl apply`, `kubectl patch`) is
//     evaluated here against the typed k8s.io/api struct (patch merge keys) and
//     sent on as an update (PUT) guarded by resourceVersion, retried on conflict.
func builtinCompat(next http.Handler, kinds []builtinKind) http.Handler {
	kindOf := map[schema.GroupVersionResource]schema.GroupVersionKind{}
	for _, k := range kinds {
		kindOf[schema.GroupVersionResource{Group: k.Group, Version: k.Version, Resource: k.Plural}] = schema.GroupVersionKind{Group: k.Group, Version: k.Version, Kind: k.Kind}
	}
	const pb = "application/vnd.kubernetes.protobuf"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri, ok := apirequest.RequestInfoFrom(r.Context())
		if !ok || !ri.IsResourceRequest {
			next.ServeHTTP(w, r)
			return
		}
		if acc := r.Header.Get("Accept"); strings.Contains(acc, pb) {
			var keep []string
			for _, part := range strings.Split(acc, ",") {
				if !strings.HasPrefix(strings.TrimSpace(part), pb) {
					keep = append(keep, part)
				}
			}
			if len(keep) == 0 {
				keep = []string{"application/json"}
			}
			r.Header.Set("Accept", strings.Join(keep, ","))
		}
		ct := r.Header.Get("Content-Type")
		if i := strings.Index(ct, ";"); i >= 0 {
			ct = ct[:i]
		}
		ct = strings.TrimSpace(ct)
		fail := func(err error) {
			responsewriters.ErrorNegotiated(err, scheme.Codecs, schema.GroupVersion{Group: ri.APIGroup, Version: ri.APIVersion}, w, r)
		}
		if ct == pb && r.Body != nil {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				fail(apierrors.NewBadRequest(err.Error()))
				return
			}
			obj, gvk, err := scheme.Codecs.UniversalDeserializer().Decode(body, nil, nil)
			if err != nil {
				fail(apierrors.NewBadRequest("decoding protobuf body: " + err.Error()))
				return
			}
			obj.GetObjectKind().SetGroupVersionKind(*gvk)
			js, err := json.Marshal(obj)
			if err != nil {
				fail(apierrors.NewInternalError(err))
				return
			}
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(js)), int64(len(js))
			r.Header.Set("Content-Type", "application/json")
			r.Header.Del("Content-Length")
		}
		if ri.APIGroup == "" && ri.Resource == "serviceaccounts" && ri.Subresource == "token" {
			serveTokenRequest(w, r, ri, fail)
			return
		}
		gvk, known := kindOf[schema.GroupVersionResource{Group: ri.APIGroup, Version: ri.APIVersion, Resource: ri.Resource}]
		if ri.Verb != "patch" || ct != "application/strategic-merge-patch+json" || !known {
			next.ServeHTTP(w, r)
			return
		}
		typed, err := scheme.Scheme.New(gvk)
		if err != nil {
			next.ServeHTTP(w, r)
			return
		}
		patch, err := io.ReadAll(r.Body)
		if err != nil {
			fail(apierrors.NewBadRequest(err.Error()))
			return
		}
		for attempt := 0; ; attempt++ {
			gri := *ri
			gri.Verb = "get"
			greq := r.Clone(apirequest.WithRequestInfo(r.Context(), &gri))
			greq.Method, greq.Body, greq.ContentLength = http.MethodGet, http.NoBody, 0
			greq.URL.RawQuery = ""
			greq.Header = http.Header{"Accept": {"application/json"}}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, greq)
			if rec.Code != http.StatusOK {
				copyResponse(w, rec)
				return
			}
			patched, err := strategicpatch.StrategicMergePatch(rec.Body.Bytes(), patch, typed)
			if err != nil {
				fail(apierrors.NewBadRequest("strategic merge patch: " + err.Error()))
				return
			}
			uri := *ri
			uri.Verb = "update"
			ureq := r.Clone(apirequest.WithRequestInfo(r.Context(), &uri))
			ureq.Method, ureq.Body, ureq.ContentLength = http.MethodPut, io.NopCloser(bytes.NewReader(patched)), int64(len(patched))
			ureq.Header.Set("Content-Type", "application/json")
			ureq.Header.Del("Content-Length")
			rec = httptest.NewRecorder()
			next.ServeHTTP(rec, ureq)
			if rec.Code == http.StatusConflict && attempt < 5 {
				continue
			}
			copyResponse(w, rec)
			return
		}
	})
}

func copyResponse(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// alwaysRules: SelfSubjectRulesReview with --authz=always (everything allowed).
type alwaysRules struct{}

func (alwaysRules) RulesFor(context.Context, user.Info, string) ([]authorizer.ResourceRuleInfo, []authorizer.NonResourceRuleInfo, bool, error) {
	return []authorizer.ResourceRuleInfo{&authorizer.DefaultResourceRuleInfo{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}}},
		[]authorizer.NonResourceRuleInfo{&authorizer.DefaultNonResourceRuleInfo{Verbs: []string{"*"}, NonResourceURLs: []string{"*"}}}, false, nil
}

func writeJSON(w http.ResponseWriter, v interface{}) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
