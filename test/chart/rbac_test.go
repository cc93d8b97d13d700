package chart

import (
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/fitgate/fitgate/feasibility"
)

// cacheResources maps every kind fitgate's cache holds to its resource. A
// kind added to feasibility.AllKinds fails TestRBACLeastPrivilege until it
// is added here and to the chart's ClusterRole.
var cacheResources = map[feasibility.Kind]schema.GroupResource{
	feasibility.KindNode:           {Resource: "nodes"},
	feasibility.KindPod:            {Resource: "pods"},
	feasibility.KindNamespace:      {Resource: "namespaces"},
	feasibility.KindPVC:            {Resource: "persistentvolumeclaims"},
	feasibility.KindPV:             {Resource: "persistentvolumes"},
	feasibility.KindStorageClass:   {Group: "storage.k8s.io", Resource: "storageclasses"},
	feasibility.KindCSINode:        {Group: "storage.k8s.io", Resource: "csinodes"},
	feasibility.KindResourceQuota:  {Resource: "resourcequotas"},
	feasibility.KindLimitRange:     {Resource: "limitranges"},
	feasibility.KindPriorityClass:  {Group: "scheduling.k8s.io", Resource: "priorityclasses"},
	feasibility.KindRuntimeClass:   {Group: "node.k8s.io", Resource: "runtimeclasses"},
	feasibility.KindServiceAccount: {Resource: "serviceaccounts"},
	feasibility.KindSecret:         {Resource: "secrets"},
	feasibility.KindConfigMap:      {Resource: "configmaps"},
}

// metadataOnly are watched through the metadata client and confirmed with
// name-filtered lists: list and watch, never get.
var metadataOnly = []string{"secrets", "configmaps"}

var readVerbs = []string{"get", "list", "watch"}

// TestRBACLeastPrivilege checks the rendered roles rule by rule:
//   - the cluster-wide read role grants get, list and watch on exactly what
//     the cache mirrors, with Secrets and ConfigMaps list and watch only;
//   - no ClusterRole grants get on Secrets, and none writes anything but
//     the release's own webhook configuration, by resourceName;
//   - the namespaced Role touches only Secrets, with everything but create
//     restricted to the release's certificate Secret;
//   - cert-manager mode needs no write access at all;
//   - every binding binds only the release's ServiceAccount.
func TestRBACLeastPrivilege(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			m := render(t, testRelease, testNamespace, v)
			want := expected[v.name]
			dep := one[*appsv1.Deployment](t, m)
			sa := dep.Spec.Template.Spec.ServiceAccountName
			vwcName := flags(dep.Spec.Template.Spec.Containers[0].Args)["webhook-config-name"]

			roles := map[string]*rbacv1.ClusterRole{}
			for _, cr := range all[*rbacv1.ClusterRole](m) {
				roles[cr.Name] = cr
				for _, r := range cr.Rules {
					checkNoWildcards(t, cr.Name, r)
					if covers(r, "", "secrets") && slices.Contains(r.Verbs, "get") {
						t.Errorf("ClusterRole %s grants get on secrets: %+v", cr.Name, r)
					}
					if write := without(r.Verbs, readVerbs...); len(write) > 0 {
						if want.certManager || !slices.Equal(r.APIGroups, []string{"admissionregistration.k8s.io"}) ||
							!slices.Equal(r.Resources, []string{"validatingwebhookconfigurations"}) ||
							!slices.Equal(r.ResourceNames, []string{vwcName}) || !slices.Equal(write, []string{"update"}) {
							t.Errorf("ClusterRole %s writes %v beyond its own webhook configuration: %+v", cr.Name, write, r)
						}
					}
				}
			}
			read := roles[testRelease]
			if read == nil {
				t.Fatalf("no ClusterRole %s", testRelease)
			}
			checkReadRole(t, read)
			if want.certManager && len(roles) != 1 {
				t.Errorf("cert-manager mode: %d ClusterRoles, want only the read one", len(roles))
			}
			if !want.certManager && roles[testRelease+"-webhook-config"] == nil {
				t.Errorf("self-managed mode: no ClusterRole for the webhook configuration")
			}

			checkRoles(t, all[*rbacv1.Role](m), want)

			for _, b := range all[*rbacv1.ClusterRoleBinding](m) {
				checkSubjects(t, b.Name, b.Subjects, sa)
				if roles[b.RoleRef.Name] == nil || b.RoleRef.Kind != "ClusterRole" {
					t.Errorf("ClusterRoleBinding %s binds %+v, not a rendered ClusterRole", b.Name, b.RoleRef)
				}
			}
			for _, b := range all[*rbacv1.RoleBinding](m) {
				checkSubjects(t, b.Name, b.Subjects, sa)
				if b.RoleRef.Kind != "Role" {
					t.Errorf("RoleBinding %s binds a %s", b.Name, b.RoleRef.Kind)
				}
			}
		})
	}
}

func checkReadRole(t *testing.T, cr *rbacv1.ClusterRole) {
	t.Helper()
	for _, r := range cr.Rules {
		if extra := without(r.Verbs, readVerbs...); len(extra) > 0 {
			t.Errorf("read ClusterRole grants %v: %+v", extra, r)
		}
		if len(r.ResourceNames) > 0 || len(r.NonResourceURLs) > 0 {
			t.Errorf("read ClusterRole rule %+v", r)
		}
	}
	granted := map[schema.GroupResource][]string{}
	for _, r := range cr.Rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				gr := schema.GroupResource{Group: g, Resource: res}
				granted[gr] = append(granted[gr], r.Verbs...)
			}
		}
	}
	for _, kind := range feasibility.AllKinds {
		gr, ok := cacheResources[kind]
		if !ok {
			t.Errorf("the cache holds %s: add it to cacheResources and to the chart's ClusterRole", kind)
			continue
		}
		verbs := granted[gr]
		wantVerbs := readVerbs
		if slices.Contains(metadataOnly, gr.Resource) {
			wantVerbs = []string{"list", "watch"}
		}
		slices.Sort(verbs)
		if !slices.Equal(slices.Compact(verbs), wantVerbs) {
			t.Errorf("%s: verbs %v, want %v", gr, verbs, wantVerbs)
		}
		delete(granted, gr)
	}
	for gr, verbs := range granted {
		t.Errorf("read ClusterRole grants %v on %s, which the cache does not hold", verbs, gr)
	}
}

func checkRoles(t *testing.T, roles []*rbacv1.Role, want expectations) {
	t.Helper()
	if want.certManager {
		if len(roles) != 0 {
			t.Errorf("cert-manager mode renders %d Roles", len(roles))
		}
		return
	}
	if len(roles) != 1 {
		t.Fatalf("%d Roles, want the certificate Secret's", len(roles))
	}
	for _, r := range roles[0].Rules {
		checkNoWildcards(t, roles[0].Name, r)
		if !slices.Equal(r.APIGroups, []string{""}) || !slices.Equal(r.Resources, []string{"secrets"}) {
			t.Errorf("Role rule beyond secrets: %+v", r)
			continue
		}
		if slices.Equal(r.Verbs, []string{"create"}) && len(r.ResourceNames) == 0 {
			continue // RBAC cannot restrict create by name
		}
		if !slices.Equal(r.ResourceNames, []string{want.secretName}) {
			t.Errorf("Role rule %+v is not restricted to Secret %s", r, want.secretName)
		}
		if extra := without(r.Verbs, "get", "list", "watch", "update"); len(extra) > 0 {
			t.Errorf("Role grants %v on the Secret", extra)
		}
	}
}

func checkSubjects(t *testing.T, binding string, subjects []rbacv1.Subject, sa string) {
	t.Helper()
	if len(subjects) != 1 || subjects[0].Kind != rbacv1.ServiceAccountKind || subjects[0].Name != sa || subjects[0].Namespace != testNamespace {
		t.Errorf("binding %s subjects %+v, want only ServiceAccount %s/%s", binding, subjects, testNamespace, sa)
	}
}

func checkNoWildcards(t *testing.T, role string, r rbacv1.PolicyRule) {
	t.Helper()
	for _, list := range [][]string{r.Verbs, r.APIGroups, r.Resources} {
		if slices.Contains(list, "*") {
			t.Errorf("%s has a wildcard: %+v", role, r)
		}
	}
}

// covers reports whether r applies to group/resource.
func covers(r rbacv1.PolicyRule, group, resource string) bool {
	return slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource)
}

// without returns the verbs not in allowed.
func without(verbs []string, allowed ...string) []string {
	var out []string
	for _, v := range verbs {
		if !slices.Contains(allowed, v) {
			out = append(out, v)
		}
	}
	return out
}
