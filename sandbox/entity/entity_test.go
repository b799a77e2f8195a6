package entity_test

import (
	"testing"

	"github.com/gatehouse/gatehouse/sandbox/entity"
	"github.com/gatehouse/gatehouse/sandbox/internal/sandboxtest"
)

func TestGolden(t *testing.T) {
	h := &entity.Handler{DB: sandboxtest.DB(t)}
	for _, tc := range []struct{ name, method, path, body string }{
		{"customers_query", "GET", "/api/sales/customers?$query=State eq 'NY' or (State eq 'IA' and CreditLimit ge 90000)", ""},
		{"customer_one", "GET", "/api/sales/customers/100101", ""},
		{"seed_entity_customers", "GET", "/api/entity/customers/?$query=substringof('Lakeside', CustomerName)", ""},
		{"customer_missing", "GET", "/api/sales/customers/1", ""},
		{"customer_template", "GET", "/api/sales/customers/new", ""},
		{"customer_create", "POST", "/api/sales/customers", `{"CustomerName":"Entity Test Co","Address1":"123 Main St","City":"Anytown","State":"IA","CreditLimit":5000}`},
		{"customer_update_post", "POST", "/api/sales/customers", `{"CustomerCode":100221,"CustomerName":"Entity Test Renamed","DateCreated":"ignored"}`},
		{"customer_update_put", "PUT", "/api/sales/customers/100221", `{"Phone":"(515) 555-0100","Taxable":false}`},
		{"customer_invalid", "POST", "/api/sales/customers", `{"Address1":"123 Main St","State":"Iowa","Email":"nope","Colour":"red"}`},
		{"customer_invalid_values", "POST", "/api/sales/customers", `{"State":"Iowa","Email":"nope","CreditLimit":"lots"}`},
		{"order_lines", "GET", "/api/sales/orders/1001002?extendedproperties=Lines", ""},
		{"order_create", "POST", "/api/sales/orders", `{"CustomerCode":100105,"PoNumber":"ENT-1","Lines":[{"ItemId":"PMP-1042","Quantity":2},{"ItemId":"BRG-1035","Quantity":1,"UnitPrice":12.5}]}`},
		{"order_update", "PUT", "/api/sales/orders/1001091", `{"PoNumber":"ENT-2","Lines":[{"LineNumber":2,"Quantity":3}]}`},
		{"order_invalid", "POST", "/api/sales/orders", `{"CustomerCode":1,"Lines":[{"ItemId":"NOPE","Quantity":0}]}`},
		{"contact_create", "POST", "/api/contacts", `{"AddressId":100101,"FirstName":"Grace","LastName":"Hopper","Email":"grace@example.com"}`},
		{"contact_update", "PUT", "/api/contacts/203", `{"Title":"Rear Admiral"}`},
		{"quotes", "GET", "/api/sales/quotes?$query=CustomerCode lt 100140", ""},
		{"invoices_unpaid", "GET", "/api/sales/invoices?$query=PaidInFull eq 'N' and TotalAmount gt 5000", ""},
		{"parts_query", "GET", "/api/inventory/parts?$query=startswith(ItemId,'PMP') and ListPrice lt 100", ""},
		{"part_one", "GET", "/api/inventory/parts/FA5-1000", ""},
		{"warehouses", "GET", "/api/inventory/warehouses", ""},
		{"locations", "GET", "/api/inventory/locations?$query=ItemId eq 'FA5-1000'", ""},
		{"suppliers", "GET", "/api/purchasing/suppliers?$query=RowStatusFlag eq 705", ""},
		{"purchaseorders", "GET", "/api/purchasing/purchaseorders?$query=Complete eq 'N' and TotalAmount gt 8000", ""},
		{"addresses_one", "GET", "/api/addresses/21201", ""},
		{"bad_query", "GET", "/api/sales/customers?$query=State = 'NY'", ""},
		{"read_only", "POST", "/api/purchasing/suppliers", `{}`},
		{"unknown", "GET", "/api/sales/nothing", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := sandboxtest.Do(h, sandboxtest.Request{Method: tc.method, Path: tc.path, Body: tc.body, User: "api_user"})
			if r.Status >= 500 {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			sandboxtest.Golden(t, tc.name, r)
		})
	}
}
