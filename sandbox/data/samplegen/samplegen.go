// Package samplegen makes the sandbox's sample data from a fixed seed:
// the same rows on every run. go generate in sandbox/data writes them to
// the CSV files that are committed and embedded in the binary; a test
// checks that the files are what Generate makes.
package samplegen

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Null is how a CSV field says NULL.
const Null = `\N`

var (
	first   = []string{"Acme", "Summit", "Prairie", "Lakeside", "Keystone", "Granite", "Riverbend", "Northstar", "Harbor", "Cedar", "Ironwood", "Bluewater", "Pioneer", "Redline", "Westfield", "Crescent", "Eagle", "Frontier", "Heartland", "Liberty"}
	second  = []string{"Industrial", "Hydraulics", "Supply", "Fluid Power", "Manufacturing", "Equipment", "Filtration", "Machine Works", "Distribution", "Controls", "Pneumatics", "Fabrication"}
	suffix  = []string{"Inc", "LLC", "Co", "Corp", "Ltd", "Company"}
	streets = []string{"Main St", "Industrial Pkwy", "Commerce Dr", "Oak Ave", "Enterprise Blvd", "Mill Rd", "Railroad St", "Lake Shore Dr", "Madison Ave", "Factory Ln"}
	places  = [][3]string{{"Chicago", "IL", "606"}, {"Des Moines", "IA", "503"}, {"Milwaukee", "WI", "532"}, {"Indianapolis", "IN", "462"},
		{"Columbus", "OH", "432"}, {"Detroit", "MI", "482"}, {"St. Louis", "MO", "631"}, {"Minneapolis", "MN", "554"},
		{"Omaha", "NE", "681"}, {"Louisville", "KY", "402"}, {"Peoria", "IL", "616"}, {"Cedar Rapids", "IA", "524"}}
	firstNames = []string{"James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Carlos", "Karen", "Daniel", "Nancy", "Matthew", "Lisa", "Anthony", "Betty", "Mark", "Sandra", "Steven", "Ashley", "Brian", "O'Neil"}
	lastNames  = []string{"Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez", "Hernandez", "Lopez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White", "O'Brien", "Clark"}
	titles     = []string{"Purchasing Manager", "Buyer", "Accounts Payable", "Plant Manager", "Maintenance Supervisor", "Owner", "Sales Representative", "Inside Sales"}
	groups     = [][2]string{{"FA5", "Filters and Elements"}, {"HYD1", "Hydraulic Hose"}, {"HYD2", "Hydraulic Fittings"}, {"PN1", "Pneumatic Valves"},
		{"PN2", "Pneumatic Cylinders"}, {"BRG", "Bearings"}, {"PMP", "Pumps"}, {"SEAL", "Seals and O-Rings"}, {"MTR", "Motors"},
		{"GAU", "Gauges"}, {"ACC", "Accessories"}, {"SU5K", "Specialty Units"}}
	nouns = map[string][]string{
		"FA5":  {"Return Filter Element", "Spin-On Filter", "Suction Strainer", "Breather Filter", "Pressure Filter Element"},
		"HYD1": {"Hydraulic Hose 2-Wire", "Hydraulic Hose 4-Spiral", "Suction Hose", "Thermoplastic Hose"},
		"HYD2": {"JIC Swivel Fitting", "NPT Adapter", "ORFS Fitting", "Quick Coupler", "Hose Barb"},
		"PN1":  {"Solenoid Valve", "Flow Control Valve", "Check Valve", "Ball Valve"},
		"PN2":  {"Air Cylinder", "Compact Cylinder", "Rodless Cylinder"},
		"BRG":  {"Ball Bearing", "Roller Bearing", "Pillow Block Bearing", "Thrust Bearing"},
		"PMP":  {"Gear Pump", "Vane Pump", "Piston Pump"},
		"SEAL": {"O-Ring Kit", "Rod Seal", "Piston Seal", "Wiper Seal"},
		"MTR":  {"Hydraulic Motor", "Electric Motor", "Gear Motor"},
		"GAU":  {"Pressure Gauge", "Temperature Gauge", "Flow Meter"},
		"ACC":  {"Hose Clamp", "Mounting Bracket", "Thread Sealant", "Cable Tie Pack"},
		"SU5K": {"Power Unit", "Accumulator", "Heat Exchanger"},
	}
	sizes   = []string{"1/4\"", "3/8\"", "1/2\"", "3/4\"", "1\"", "10 Micron", "25 Micron", "2 in", "4 in", "Small", "Large"}
	units   = []string{"EA", "EA", "EA", "FT", "BOX", "PK"}
	takers  = []string{"JSMITH", "MGARCIA", "TLEE", "admin"}
	salesrp = []string{"1001", "1002", "1003", "1004", "1005"}
	terms   = []string{"NET30", "NET30", "NET45", "2/10N30", "COD"}
)

var base = time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)

func day(n int) string       { return base.AddDate(0, 0, n).Format(time.RFC3339) }
func money(v float64) string { return fmt.Sprintf("%.2f", v) }
func itoa(n int) string      { return fmt.Sprint(n) }

// Generate returns every table's rows, the first row its header.
func Generate() map[string][][]string {
	r := rand.New(rand.NewPCG(21, 2026))
	pick := func(s []string) string { return s[r.IntN(len(s))] }
	out := map[string][][]string{}
	add := func(table string, row ...string) { out[table] = append(out[table], row) }
	auditCols := []string{"date_created", "date_last_modified", "last_maintained_by"}
	header := func(table string, cols ...string) { out[table] = [][]string{append(cols, auditCols...)} }
	stamp := func(created int) []string {
		return []string{day(created), day(created + r.IntN(200)), pick(takers)}
	}

	header("supplier", "supplier_id", "supplier_name", "phone_number", "email_address", "mail_address1", "mail_city", "mail_state",
		"mail_postal_code", "default_terms_id", "row_status_flag")
	header("customer", "customer_id", "customer_name", "company_id", "mail_address1", "mail_city", "mail_state", "mail_postal_code",
		"phone_number", "email_address", "credit_limit", "salesrep_id", "terms_id", "taxable", "delete_flag")
	header("address", "id", "name", "mail_address1", "mail_address2", "mail_city", "mail_state", "mail_postal_code", "mail_country",
		"central_phone_number", "email_address", "delete_flag")
	header("contacts", "contact_id", "address_id", "first_name", "last_name", "title", "email_address", "direct_phone", "delete_flag")

	usedNames := map[string]bool{}
	company := func() string {
		for {
			n := pick(first) + " " + pick(second) + " " + pick(suffix)
			if !usedNames[n] {
				usedNames[n] = true
				return n
			}
		}
	}
	contactID := 1
	addContacts := func(addressID, n int, domain string) {
		for i := 0; i < n; i++ {
			fn, ln := pick(firstNames), pick(lastNames)
			title, email, phone := Null, Null, Null
			if r.IntN(4) > 0 {
				title = pick(titles)
			}
			if r.IntN(5) > 0 {
				email = strings.ToLower(strings.ReplaceAll(fn[:1]+ln, "'", "")) + "@" + domain
			}
			if r.IntN(3) > 0 {
				phone = fmt.Sprintf("(%03d) 555-%04d", 200+r.IntN(700), r.IntN(10000))
			}
			add("contacts", append([]string{itoa(contactID), itoa(addressID), fn, ln, title, email, phone, "N"}, stamp(r.IntN(500))...)...)
			contactID++
		}
	}
	address := func(id int, name string) (street, city, state, zip, phone, email, domain string) {
		p := places[r.IntN(len(places))]
		street = fmt.Sprintf("%d %s", 100+r.IntN(9800), pick(streets))
		city, state, zip = p[0], p[1], p[2]+fmt.Sprintf("%02d", r.IntN(100))
		phone = fmt.Sprintf("(%03d) 555-%04d", 200+r.IntN(700), r.IntN(10000))
		domain = strings.ToLower(strings.Fields(name)[0]+strings.Fields(name)[1]) + ".example"
		email = Null
		if r.IntN(6) > 0 {
			email = "orders@" + domain
		}
		line2 := Null
		if r.IntN(5) == 0 {
			line2 = fmt.Sprintf("Suite %d", 100+r.IntN(400))
		}
		add("address", append([]string{itoa(id), name, street, line2, city, state, zip, "USA", phone, email, "N"}, stamp(r.IntN(300))...)...)
		return
	}

	var supplierIDs []int
	for i := 0; i < 60; i++ {
		id := 21201 + i
		supplierIDs = append(supplierIDs, id)
		name := company()
		street, city, state, zip, phone, email, domain := address(id, name)
		status := "704"
		if i%13 == 7 {
			status = "705"
		}
		add("supplier", append([]string{itoa(id), name, phone, email, street, city, state, zip, pick(terms), status}, stamp(r.IntN(300))...)...)
		if i%2 == 0 {
			addContacts(id, 1, domain)
		}
	}
	var customerIDs []int
	for i := 0; i < 120; i++ {
		id := 100101 + i
		customerIDs = append(customerIDs, id)
		name := company()
		street, city, state, zip, phone, email, domain := address(id, name)
		taxable := "1"
		if i%4 == 3 {
			taxable = "0"
		}
		del := "N"
		if i%29 == 28 {
			del = "Y"
		}
		limit := float64(5+r.IntN(96)) * 1000
		add("customer", append([]string{itoa(id), name, "ACME", street, city, state, zip, phone, email, money(limit), pick(salesrp),
			pick(terms), taxable, del}, stamp(r.IntN(300))...)...)
		addContacts(id, 1+r.IntN(2), domain)
	}

	header("product_group", "product_group_id", "product_group_desc", "company_id", "delete_flag")
	for _, g := range groups {
		add("product_group", append([]string{g[0], g[1], "ACME", "N"}, stamp(0)...)...)
	}
	header("location", "location_id", "location_name", "company_id", "mail_city", "mail_state", "delete_flag")
	locs := [][3]string{{"10", "Chicago Main Warehouse", "Chicago"}, {"20", "Des Moines Branch", "Des Moines"}, {"30", "Milwaukee Branch", "Milwaukee"}, {"40", "Indianapolis Branch", "Indianapolis"}}
	states := map[string]string{"Chicago": "IL", "Des Moines": "IA", "Milwaukee": "WI", "Indianapolis": "IN"}
	for _, l := range locs {
		add("location", append([]string{l[0], l[1], "ACME", l[2], states[l[2]], "N"}, stamp(0)...)...)
	}

	header("inv_mast", "inv_mast_uid", "item_id", "item_desc", "default_selling_unit", "product_group_id", "default_supplier_id",
		"list_price", "standard_cost", "weight", "stockable", "delete_flag")
	header("inv_loc", "location_id", "inv_mast_uid", "bin", "qty_on_hand", "qty_allocated", "moving_average_cost")
	type item struct {
		uid   int
		id    string
		unit  string
		price float64
	}
	var items []item
	for i := 0; i < 180; i++ {
		g := groups[i%len(groups)]
		uid := 1001 + i
		itemID := fmt.Sprintf("%s-%04d", g[0], 1000+i*7%9000)
		desc := pick(nouns[g[0]]) + " " + pick(sizes)
		unit := pick(units)
		price := float64(200+r.IntN(49800)) / 100
		cost := price * (0.45 + float64(r.IntN(25))/100)
		stockable := "1"
		if i%9 == 4 {
			stockable = "0"
		}
		add("inv_mast", append([]string{itoa(uid), itemID, desc, unit, g[0], itoa(supplierIDs[r.IntN(len(supplierIDs))]),
			money(price), money(cost), fmt.Sprintf("%.1f", float64(1+r.IntN(400))/10), stockable, "N"}, stamp(r.IntN(200))...)...)
		items = append(items, item{uid, itemID, unit, price})
		for j, l := range locs {
			if j > 0 && r.IntN(3) > 0 {
				continue
			}
			onHand := r.IntN(500)
			add("inv_loc", append([]string{l[0], itoa(uid), fmt.Sprintf("%c%02d-%d", 'A'+r.IntN(6), 1+r.IntN(30), 1+r.IntN(5)),
				itoa(onHand), itoa(r.IntN(onHand/4 + 1)), money(cost)}, stamp(r.IntN(200))...)...)
		}
	}

	header("oe_hdr", "order_no", "customer_id", "company_id", "order_date", "requested_date", "po_no", "ship2_name", "location_id",
		"taker", "approved", "completed", "cancel_flag", "projected_order", "delete_flag")
	header("oe_line", "oe_line_uid", "order_no", "line_no", "inv_mast_uid", "qty_ordered", "unit_of_measure", "unit_price",
		"extended_price", "delete_flag")
	header("invoice_hdr", "invoice_no", "order_no", "customer_id", "invoice_date", "total_amount", "amount_paid", "paid_in_full_flag")
	lineUID := 1
	for i := 0; i < 90; i++ {
		orderNo := itoa(1001001 + i)
		cust := customerIDs[r.IntN(len(customerIDs))]
		d := 300 + i*4 + r.IntN(4)
		req := Null
		if r.IntN(2) == 0 {
			req = day(d + 7 + r.IntN(21))
		}
		po := Null
		if r.IntN(4) > 0 {
			po = fmt.Sprintf("PO-%05d", 10000+r.IntN(90000))
		}
		quote, completed := "N", "N"
		if i%9 == 5 {
			quote = "Y"
		} else if i < 60 {
			completed = "Y"
		}
		loc := locs[r.IntN(len(locs))][0]
		var total float64
		n := 1 + r.IntN(4)
		for ln := 1; ln <= n; ln++ {
			it := items[r.IntN(len(items))]
			qty := 1 + r.IntN(24)
			ext := float64(qty) * it.price
			total += ext
			add("oe_line", append([]string{itoa(lineUID), orderNo, itoa(ln), itoa(it.uid), itoa(qty), it.unit, money(it.price), money(ext), "N"}, stamp(d)...)...)
			lineUID++
		}
		add("oe_hdr", append([]string{orderNo, itoa(cust), "ACME", day(d), req, po, "Ship to " + itoa(cust), loc, pick(takers), "Y", completed, "N", quote, "N"}, stamp(d)...)...)
		if completed == "Y" {
			paid, flag := total, "Y"
			if r.IntN(3) == 0 {
				paid, flag = 0, "N"
			}
			add("invoice_hdr", append([]string{itoa(5001001 + i), orderNo, itoa(cust), day(d + 3), money(total), money(paid), flag}, stamp(d+3)...)...)
		}
	}

	header("po_hdr", "po_no", "supplier_id", "location_id", "order_date", "po_desc", "total_amount", "complete", "delete_flag")
	for i := 0; i < 30; i++ {
		desc := Null
		if r.IntN(2) == 0 {
			desc = "Stock replenishment"
		}
		d := 320 + i*10
		add("po_hdr", append([]string{itoa(70001 + i), itoa(supplierIDs[r.IntN(len(supplierIDs))]), locs[r.IntN(len(locs))][0], day(d), desc,
			money(float64(5000+r.IntN(995000)) / 100), map[bool]string{true: "Y", false: "N"}[i < 20], "N"}, stamp(d)...)...)
	}

	header("price_page", "price_page_uid", "price_page_type_cd", "company_id", "supplier_id", "product_group_id", "discount_group_id",
		"customer_id", "inv_mast_uid", "description", "pricing_method_cd", "source_price_cd", "effective_date", "expiration_date",
		"totaling_method_cd", "totaling_basis_cd", "calculation_method_cd", "calculation_value1", "row_status_flag")
	for i := 0; i < 40; i++ {
		sup := supplierIDs[r.IntN(len(supplierIDs))]
		g := groups[r.IntN(len(groups))][0]
		d := 200 + r.IntN(300)
		status := "704"
		if i%11 == 10 {
			status = "705"
		}
		add("price_page", append([]string{itoa(45001 + i), "214", "ACME", itoa(sup), g, Null, Null, Null,
			fmt.Sprintf("P%d-%d-%s", 1+i%3, sup, g), "221", "200", day(d), day(d + 365*(1+r.IntN(5))),
			"1300", "200", "211", fmt.Sprintf("%.2f", 0.4+float64(r.IntN(50))/100), status}, stamp(d)...)...)
	}
	return out
}
