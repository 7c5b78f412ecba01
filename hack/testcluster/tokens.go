package main

// ServiceAccount tokens, standing in for kube-apiserver's TokenRequest (`create serviceaccounts/token`)
// and TokenReview (`create tokenreviews`): a token is a JWT (HS256, signed with a key made at start)
// whose subject is system:serviceaccount:<ns>:<name> and whose audiences are the requested ones, valid
// for the requested time (at least ten minutes, as kube-apiserver requires). Workload identity providers
// get such tokens from a controller and check them with a TokenReview, as cloud STSs check the real
// ones against the cluster's OIDC issuer. Requests pass the server's authentication and RBAC first.

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/dynamic"
)

const tokenIssuer = "https://driftless.testcluster.local"

var (
	tokenKey = func() []byte {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			panic(err)
		}
		return b
	}()
	tokenClientMu sync.Mutex
	tokenClient   dynamic.Interface
)

// setTokenClient gives the token handlers the loopback client they read ServiceAccounts with.
func setTokenClient(dc dynamic.Interface) {
	tokenClientMu.Lock()
	defer tokenClientMu.Unlock()
	tokenClient = dc
}

type tokenClaims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audiences []string `json:"aud"`
	IssuedAt  int64    `json:"iat"`
	NotBefore int64    `json:"nbf"`
	Expiry    int64    `json:"exp"`
	K8s       struct {
		Namespace      string `json:"namespace"`
		ServiceAccount struct {
			Name string `json:"name"`
			UID  string `json:"uid"`
		} `json:"serviceaccount"`
	} `json:"kubernetes.io"`
}

func signToken(c tokenClaims) string {
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	body, _ := json.Marshal(c)
	payload := header + "." + enc.EncodeToString(body)
	mac := hmac.New(sha256.New, tokenKey)
	mac.Write([]byte(payload))
	return payload + "." + enc.EncodeToString(mac.Sum(nil))
}

func verifyToken(token string) (*tokenClaims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("not a JWT")
	}
	mac := hmac.New(sha256.New, tokenKey)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
		return nil, fmt.Errorf("invalid signature")
	}
	body, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("malformed claims")
	}
	var c tokenClaims
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, fmt.Errorf("malformed claims")
	}
	if time.Now().Unix() >= c.Expiry {
		return nil, fmt.Errorf("token has expired")
	}
	return &c, nil
}

// serveTokenRequest answers POST /api/v1/namespaces/<ns>/serviceaccounts/<name>/token.
func serveTokenRequest(w http.ResponseWriter, r *http.Request, ri *apirequest.RequestInfo, fail func(error)) {
	if ri.Verb != "create" {
		fail(apierrors.NewMethodNotSupported(schema.GroupResource{Resource: "serviceaccounts/token"}, ri.Verb))
		return
	}
	var req struct {
		Spec struct {
			Audiences         []string `json:"audiences"`
			ExpirationSeconds *int64   `json:"expirationSeconds"`
		} `json:"spec"`
	}
	body, err := io.ReadAll(r.Body)
	if err == nil && len(body) > 0 {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		fail(apierrors.NewBadRequest("decoding the TokenRequest: " + err.Error()))
		return
	}
	expiration := int64(3600)
	if req.Spec.ExpirationSeconds != nil {
		expiration = *req.Spec.ExpirationSeconds
	}
	if expiration < 600 {
		fail(apierrors.NewBadRequest("spec.expirationSeconds: may not specify a duration less than 10 minutes"))
		return
	}
	if len(req.Spec.Audiences) == 0 {
		req.Spec.Audiences = []string{tokenIssuer}
	}
	tokenClientMu.Lock()
	dc := tokenClient
	tokenClientMu.Unlock()
	if dc == nil {
		fail(apierrors.NewServiceUnavailable("the token issuer is not ready"))
		return
	}
	sa, err := dc.Resource(schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}).
		Namespace(ri.Namespace).Get(r.Context(), ri.Name, metav1.GetOptions{})
	if err != nil {
		fail(err)
		return
	}
	now := time.Now()
	var c tokenClaims
	c.Issuer, c.Audiences = tokenIssuer, req.Spec.Audiences
	c.Subject = "system:serviceaccount:" + ri.Namespace + ":" + ri.Name
	c.IssuedAt, c.NotBefore, c.Expiry = now.Unix(), now.Unix(), now.Unix()+expiration
	c.K8s.Namespace = ri.Namespace
	c.K8s.ServiceAccount.Name, c.K8s.ServiceAccount.UID = ri.Name, string(sa.GetUID())
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]interface{}{
		"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
		"metadata": map[string]interface{}{"name": ri.Name, "namespace": ri.Namespace, "creationTimestamp": nil},
		"spec":     map[string]interface{}{"audiences": req.Spec.Audiences, "expirationSeconds": expiration},
		"status": map[string]interface{}{"token": signToken(c),
			"expirationTimestamp": time.Unix(c.Expiry, 0).UTC().Format(time.RFC3339)},
	})
}

// serveTokenReview answers POST /apis/authentication.k8s.io/v1/tokenreviews for tokens this server issued.
func serveTokenReview(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	var review struct {
		Spec struct {
			Token     string   `json:"token"`
			Audiences []string `json:"audiences"`
		} `json:"spec"`
	}
	if err := json.NewDecoder(r.Body).Decode(&review); err != nil {
		http.Error(w, "decoding the TokenReview: "+err.Error(), http.StatusBadRequest)
		return
	}
	status := map[string]interface{}{"authenticated": false}
	c, err := verifyToken(review.Spec.Token)
	if err == nil {
		audiences := c.Audiences
		if len(review.Spec.Audiences) > 0 {
			audiences = nil
			for _, want := range review.Spec.Audiences {
				for _, got := range c.Audiences {
					if want == got {
						audiences = append(audiences, want)
					}
				}
			}
			if len(audiences) == 0 {
				err = fmt.Errorf("token audiences %q is invalid for the target audiences %q", c.Audiences, review.Spec.Audiences)
			}
		}
		if err == nil {
			status = map[string]interface{}{"authenticated": true, "audiences": audiences,
				"user": map[string]interface{}{"username": c.Subject, "uid": c.K8s.ServiceAccount.UID,
					"groups": []string{"system:serviceaccounts", "system:serviceaccounts:" + c.K8s.Namespace, "system:authenticated"}}}
		}
	}
	if err != nil {
		status["error"] = err.Error()
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]interface{}{
		"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
		"metadata": map[string]interface{}{"creationTimestamp": nil},
		"spec":     review.Spec, "status": status,
	})
}
